//! The state digest: maintained incrementally, equal to one computed from scratch, sensitive to
//! every change, kept by snapshots, and able to prove single accounts and transfers.

use tally_ledger::*;

const SECOND: u64 = 1_000_000_000;

fn account(id: u128, flags: AccountFlags) -> Account {
    Account { id, ledger: 1, code: 1, flags, ..Account::default() }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u128, flags: TransferFlags) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        flags,
        ..Transfer::default()
    }
}

/// A small history that exercises every kind of state the digest covers.
fn build() -> (Ledger, Vec<[u8; 32]>) {
    let mut ledger = Ledger::new();
    let mut digests = vec![ledger.digest()];
    let results = ledger.create_accounts(
        SECOND,
        &[
            account(1, AccountFlags::HISTORY),
            account(2, AccountFlags::NONE),
            account(3, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY),
        ],
    );
    assert!(results.iter().all(|result| result.status == CreateAccountStatus::Created));
    digests.push(ledger.digest());

    let pending = Transfer { timeout: 1, ..transfer(12, 1, 2, 30, TransferFlags::PENDING) };
    let results = ledger.create_transfers(
        2 * SECOND,
        &[
            transfer(10, 1, 3, 100, TransferFlags::NONE),
            transfer(11, 3, 2, 500, TransferFlags::NONE), // Exceeds credits: id 11 fails for good.
            pending,
            transfer(13, 1, 2, 40, TransferFlags::PENDING),
            transfer(14, 2, 1, 5, TransferFlags::LINKED),
            transfer(15, 2, 2, 5, TransferFlags::NONE), // Breaks the chain: 14 is rolled back.
        ],
    );
    let statuses: Vec<_> = results.iter().map(|result| result.status).collect();
    assert_eq!(
        statuses,
        [
            CreateTransferStatus::Created,
            CreateTransferStatus::ExceedsCredits,
            CreateTransferStatus::Created,
            CreateTransferStatus::Created,
            CreateTransferStatus::LinkedEventFailed,
            CreateTransferStatus::AccountsMustBeDifferent,
        ]
    );
    digests.push(ledger.digest());

    // Posting 13 and letting 12 expire (its timeout passed by the next batch).
    let post =
        Transfer { pending_id: 13, amount: AMOUNT_MAX, ..transfer(16, 0, 0, 0, TransferFlags::POST_PENDING_TRANSFER) };
    let post = Transfer { ledger: 0, code: 0, ..post };
    let results = ledger.create_transfers(4 * SECOND, &[post]);
    assert_eq!(results[0].status, CreateTransferStatus::Created);
    digests.push(ledger.digest());
    (ledger, digests)
}

#[test]
fn incremental_digest_equals_digest_from_scratch() {
    let (ledger, digests) = build();
    assert_eq!(ledger.digest(), ledger.digest_from_scratch());
    let distinct: std::collections::HashSet<_> = digests.iter().collect();
    assert_eq!(distinct.len(), digests.len(), "every batch changed the digest");
    let account = ledger.lookup_accounts(&[1])[0];
    assert_eq!((account.debits_pending, account.debits_posted), (0, 140), "12 expired, 13 posted");
}

#[test]
fn equal_histories_give_equal_digests_and_different_ones_do_not() {
    let (first, _) = build();
    let (second, _) = build();
    assert_eq!(first.digest(), second.digest());

    let mut third = first.clone();
    // A batch that only fails still moves the clock, which is state.
    third.create_transfers(10 * SECOND, &[transfer(99, 1, 1, 1, TransferFlags::NONE)]);
    assert_ne!(third.digest(), first.digest());
    assert_eq!(third.digest(), third.digest_from_scratch());

    let mut fourth = first.clone();
    fourth.create_transfers(10 * SECOND, &[transfer(99, 1, 2, 1, TransferFlags::NONE)]);
    assert_ne!(fourth.digest(), third.digest());
}

#[test]
fn snapshot_restores_the_same_state() {
    let (ledger, _) = build();
    let snapshot = ledger.snapshot();
    let mut restored = Ledger::restore(&snapshot).expect("a valid snapshot");
    assert_eq!(restored.digest(), ledger.digest());
    assert_eq!(restored.lookup_accounts(&[1, 2, 3]), ledger.lookup_accounts(&[1, 2, 3]));
    let filter = AccountFilter {
        account_id: 1,
        limit: 100,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    assert_eq!(restored.get_account_balances(filter), ledger.get_account_balances(filter));
    assert_eq!(restored.get_account_transfers(filter), ledger.get_account_transfers(filter));

    // The restored ledger remembers the failed id and continues identically.
    let mut original = ledger.clone();
    let batch = [transfer(11, 1, 3, 1, TransferFlags::NONE), transfer(20, 1, 2, 1, TransferFlags::NONE)];
    let expected = original.create_transfers(20 * SECOND, &batch);
    assert_eq!(expected[0].status, CreateTransferStatus::IdAlreadyFailed);
    assert_eq!(restored.create_transfers(20 * SECOND, &batch), expected);
    assert_eq!(restored.digest(), original.digest());
}

#[test]
fn restore_refuses_damaged_snapshots() {
    let (ledger, _) = build();
    let snapshot = ledger.snapshot();
    assert_eq!(Ledger::restore(b"nonsense").unwrap_err(), RestoreError::BadMagic);
    for length in [8, 12, 40, snapshot.len() / 2, snapshot.len() - 1] {
        assert!(Ledger::restore(&snapshot[..length]).is_err(), "truncated to {length}");
    }
    for position in (8..snapshot.len()).step_by(7) {
        let mut damaged = snapshot.clone();
        damaged[position] ^= 0x40;
        assert!(Ledger::restore(&damaged).is_err(), "byte {position} flipped");
    }
}

#[test]
fn proofs_verify_against_the_digest() {
    let (ledger, _) = build();
    let digest = ledger.digest();
    for id in [1, 2, 3] {
        let (account, proof) = ledger.prove_account(id).expect("the account exists");
        assert!(proof.verify(&digest, &account));
        let forged = Account { credits_posted: account.credits_posted + 1, ..account };
        assert!(!proof.verify(&digest, &forged));
    }
    let (pending, proof) = ledger.prove_transfer(12).expect("the transfer exists");
    let (status, slot, path) = proof.pending.clone().expect("12 is a pending transfer");
    assert_eq!(status, PendingStatus::Expired);
    assert!(proof.verify(&digest, &pending));
    let claimed_pending = TransferProof { pending: Some((PendingStatus::Pending, slot, path)), ..proof.clone() };
    assert!(!claimed_pending.verify(&digest, &pending), "a stale status does not verify");
    assert!(!proof.verify(&[0; 32], &pending));
    let forged = Transfer { amount: pending.amount + 1, ..pending };
    assert!(!proof.verify(&digest, &forged));
    for id in [10, 13, 16] {
        let (transfer, proof) = ledger.prove_transfer(id).expect("the transfer exists");
        assert!(proof.verify(&digest, &transfer), "transfer {id}");
    }
    assert!(ledger.prove_transfer(11).is_none(), "a failed transfer does not exist");

    // Balance history: account 1's entries (created 10, pending 12 and 13, expired 12, posted
    // 16), each proven, and not as another account's or with other balances.
    let filter = AccountFilter {
        account_id: 1,
        limit: 100,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    let proven = ledger.prove_account_balances(filter);
    assert_eq!(proven.iter().map(|(balance, _)| *balance).collect::<Vec<_>>(), ledger.get_account_balances(filter));
    assert!(proven.len() >= 4, "{} entries", proven.len());
    for (balance, proof) in &proven {
        assert!(proof.verify(&digest, balance), "entry {}", proof.sequence);
        let richer = AccountBalance { credits_posted: balance.credits_posted + 1, ..*balance };
        assert!(!proof.verify(&digest, &richer));
        let elsewhere = BalanceProof { account_id: 3, ..proof.clone() };
        assert!(!elsewhere.verify(&digest, balance));
    }
    let reversed = AccountFilter { flags: filter.flags | AccountFilterFlags::REVERSED, limit: 2, ..filter };
    assert_eq!(ledger.prove_account_balances(reversed).len(), 2);
}

/// Proofs in a ledger of many accounts and transfers, made batch by batch (so the transfer log's
/// chunks and the account segments fill across batches), and in the same ledger restored from a
/// snapshot (whose commitment is rebuilt in one pass): every proof verifies, has the compact size
/// the docs give, and does not verify for another transfer or account.
#[test]
fn proofs_stay_compact_and_verify_across_batches_and_restores() {
    let mut ledger = Ledger::new();
    let accounts: Vec<Account> = (1..=1_100u128).map(|id| account(id, AccountFlags::NONE)).collect();
    for (batch, chunk) in accounts.chunks(300).enumerate() {
        ledger.create_accounts((batch as u64 + 1) * SECOND, chunk);
    }
    let mut id = 10_000u128;
    for batch in 0..37u64 {
        let transfers: Vec<Transfer> = (0..(batch % 11 + 1) * 7)
            .map(|n| {
                id += 1;
                let debit = (id * 7 + u128::from(n)) % 1_100 + 1;
                transfer(id, debit, debit % 1_100 + 1, 1, TransferFlags::NONE)
            })
            .collect();
        ledger.create_transfers((100 + batch) * SECOND, &transfers);
    }
    let restored = Ledger::restore(&ledger.snapshot()).expect("a valid snapshot");
    assert_eq!(restored.digest(), ledger.digest());
    let digest = ledger.digest();
    let transfer_count = ledger.digest_parts().transfer_count;
    assert!(transfer_count > 1_000, "{transfer_count} transfers");
    for which in [&ledger, &restored] {
        for id in (10_001..=id).step_by(13) {
            let Some((transfer, proof)) = which.prove_transfer(id) else { continue };
            assert!(proof.verify(&digest, &transfer), "transfer {id}");
            assert!(proof.log.chunk.len() <= 1_024 && proof.log.siblings.len() <= 64);
            let other = Transfer { id: transfer.id + 1, ..transfer };
            assert!(!proof.verify(&digest, &other));
        }
        for id in [1u128, 33, 512, 513, 1_024, 1_100] {
            let (account, proof) = which.prove_account(id).expect("the account exists");
            assert!(proof.verify(&digest, &account), "account {id}");
            assert!(proof.path.chunk.len() <= 32 && proof.path.siblings.len() <= 4 && proof.path.path.len() <= 2);
            let (neighbour, _) = which.prove_account(if id == 1 { 2 } else { id - 1 }).unwrap();
            assert!(!proof.verify(&digest, &neighbour));
        }
    }
}
