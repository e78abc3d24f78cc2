//! Snapshots: the whole ledger state as bytes, and back.
//!
//! The format (every integer little-endian; documented in `docs/LEDGER.md`):
//!
//! ```text
//! magic "TALLYLDG" | version u32 | timestamp_last u64
//! account_count u64  | account_count × Account (128 bytes)
//! transfer_count u64 | transfer_count × Transfer (128 bytes)
//! one status byte per transfer with flags.pending, in transfer order (1 pending, 2 posted,
//!   3 voided, 4 expired)
//! balance_count u64  | balance_count × (account index u32, transfer index u64,
//!   debits_pending u128, debits_posted u128, credits_pending u128, credits_posted u128,
//!   timestamp u64), in the order the entries were made
//! failed_count u64   | failed_count × transfer id u128, in the order they failed
//! digest [32]        | the state digest of the ledger that wrote the snapshot
//! checksum [32]      | BLAKE3 of every byte before it
//! ```
//!
//! Indexes, the expiry queue and the Merkle trees are rebuilt on restore, and the rebuilt
//! digest must equal the one written. Restore treats its input as untrusted: every count is
//! checked against the bytes left before anything is allocated, and every inconsistency is a
//! [`RestoreError`], never a panic.

use std::collections::HashSet;

use crate::commitment::{Commitment, balances_in_order};
use crate::constants::{OBJECT_SIZE, TIMESTAMP_MAX};
use crate::ledger::{Changes, Ledger};
use crate::store::{AccountIndex, BalanceEntry, MemoryStore, PendingStatus, Store, TransferIndex};
use crate::types::{Account, AccountBalance, AccountFlags, Transfer, TransferFlags};

const MAGIC: &[u8; 8] = b"TALLYLDG";
const VERSION: u32 = 1;
const BALANCE_RECORD_SIZE: usize = 4 + 8 + 4 * 16 + 8;
const CHECKSUM_KEY: &[u8; 32] = b"tally.ledger.v1.snapshot........";

/// Why bytes are not a snapshot of a ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("not a Tally ledger snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    #[error("snapshot is truncated: {needed} more bytes needed for {what}")]
    Truncated { what: &'static str, needed: u64 },
    #[error("snapshot checksum does not match its contents")]
    ChecksumMismatch,
    #[error("snapshot has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
    #[error("snapshot digest {written} does not match the restored state's digest {restored}")]
    DigestMismatch { written: String, restored: String },
}

impl Ledger<MemoryStore> {
    /// The whole state as bytes, for [`Ledger::restore`].
    pub fn snapshot(&self) -> Vec<u8> {
        assert!(self.scope.is_none(), "snapshots are taken between batches");
        let store = &self.store;
        let mut bytes =
            Vec::with_capacity(64 + (store.account_count() as usize + store.transfer_count() as usize) * OBJECT_SIZE);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.timestamp_last.to_le_bytes());

        bytes.extend_from_slice(&u64::from(store.account_count()).to_le_bytes());
        for index in 0..store.account_count() {
            bytes.extend_from_slice(&store.account(index).to_bytes());
        }
        bytes.extend_from_slice(&store.transfer_count().to_le_bytes());
        for index in 0..store.transfer_count() {
            bytes.extend_from_slice(&store.transfer(index).to_bytes());
        }
        for index in 0..store.transfer_count() {
            if store.transfer(index).flags.contains(TransferFlags::PENDING) {
                let status = store.pending_status(index).expect("a pending transfer has a status");
                bytes.push(status as u8);
            }
        }
        let balances = balances_in_order(store);
        bytes.extend_from_slice(&(balances.len() as u64).to_le_bytes());
        for (account, entry) in balances {
            bytes.extend_from_slice(&account.to_le_bytes());
            bytes.extend_from_slice(&entry.transfer.to_le_bytes());
            bytes.extend_from_slice(&entry.balance.to_bytes()[..72]);
        }
        let failed = store.failed_transfer_ids();
        bytes.extend_from_slice(&(failed.len() as u64).to_le_bytes());
        for id in failed {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        bytes.extend_from_slice(&self.digest());
        let checksum = blake3::keyed_hash(CHECKSUM_KEY, &bytes);
        bytes.extend_from_slice(checksum.as_bytes());
        bytes
    }

    /// The ledger a snapshot describes. Refuses anything that is not exactly a snapshot written
    /// by [`Ledger::snapshot`].
    pub fn restore(bytes: &[u8]) -> Result<Self, RestoreError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(RestoreError::BadMagic);
        }
        let mut reader = Reader { bytes, offset: MAGIC.len() };
        let version = u32::from_le_bytes(reader.take("version")?);
        if version != VERSION {
            return Err(RestoreError::UnsupportedVersion(version));
        }
        if bytes.len() < MAGIC.len() + 4 + 32 {
            return Err(RestoreError::Truncated { what: "checksum", needed: 32 });
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if blake3::keyed_hash(CHECKSUM_KEY, body).as_bytes() != checksum {
            return Err(RestoreError::ChecksumMismatch);
        }
        reader.bytes = body;
        let timestamp_last = u64::from_le_bytes(reader.take("timestamp")?);
        if timestamp_last > TIMESTAMP_MAX {
            return Err(inconsistent(format!("last timestamp {timestamp_last} is out of range")));
        }
        let mut store = MemoryStore::new();

        let account_count = reader.count("accounts", OBJECT_SIZE)?;
        if account_count > u64::from(AccountIndex::MAX) {
            return Err(inconsistent(format!("{account_count} accounts exceed the index range")));
        }
        for _ in 0..account_count {
            let account = Account::from_bytes(&reader.take("account")?);
            if account.id == 0 || account.id == u128::MAX || store.account_index(account.id).is_some() {
                return Err(inconsistent(format!("account id {} is reserved or repeated", account.id)));
            }
            let previous = store.account_count().checked_sub(1).map(|last| store.account(last).timestamp);
            if account.timestamp == 0
                || account.timestamp > timestamp_last
                || previous.is_some_and(|previous| account.timestamp <= previous)
            {
                return Err(inconsistent(format!("account {} is out of timestamp order", account.id)));
            }
            check_account(&account)?;
            store.push_account(account);
        }

        let transfer_count = reader.count("transfers", OBJECT_SIZE)?;
        let mut expected = vec![[0u128; 4]; account_count as usize];
        for _ in 0..transfer_count {
            let transfer = Transfer::from_bytes(&reader.take("transfer")?);
            if transfer.id == 0 || transfer.id == u128::MAX || store.transfer_index(transfer.id).is_some() {
                return Err(inconsistent(format!("transfer id {} is reserved or repeated", transfer.id)));
            }
            let previous = store.transfer_count().checked_sub(1).map(|last| store.transfer(last).timestamp);
            if transfer.timestamp == 0
                || transfer.timestamp > timestamp_last
                || previous.is_some_and(|previous| transfer.timestamp <= previous)
            {
                return Err(inconsistent(format!("transfer {} is out of timestamp order", transfer.id)));
            }
            if transfer.flags.has_reserved_bits() {
                return Err(inconsistent(format!("transfer {} has reserved flags", transfer.id)));
            }
            let (Some(debit), Some(credit)) =
                (store.account_index(transfer.debit_account_id), store.account_index(transfer.credit_account_id))
            else {
                return Err(inconsistent(format!("transfer {} names a missing account", transfer.id)));
            };
            if debit == credit {
                return Err(inconsistent(format!("transfer {} debits and credits one account", transfer.id)));
            }
            store.push_transfer(transfer, debit, credit);
        }

        // Pending statuses, and the balances every transfer implies, to check the accounts.
        for index in 0..transfer_count {
            let transfer = *store.transfer(index);
            if transfer.flags.contains(TransferFlags::PENDING) {
                let [code] = reader.take::<1>("pending status")?;
                let status = PendingStatus::from_code(code)
                    .ok_or_else(|| inconsistent(format!("pending status code {code}")))?;
                store.set_pending_status(index, Some(status));
                if status == PendingStatus::Pending && transfer.timeout > 0 {
                    store.insert_expiry(transfer.timestamp + transfer.timeout_ns(), index);
                }
            }
            apply_to_expected(&store, &mut expected, &transfer)?;
        }
        for (index, [debits_pending, debits_posted, credits_pending, credits_posted]) in expected.iter().enumerate() {
            let account = store.account(index as AccountIndex);
            if (account.debits_pending, account.debits_posted, account.credits_pending, account.credits_posted)
                != (*debits_pending, *debits_posted, *credits_pending, *credits_posted)
            {
                return Err(inconsistent(format!("account {} balances disagree with its transfers", account.id)));
            }
        }

        let balance_count = reader.count("balances", BALANCE_RECORD_SIZE)?;
        for sequence in 0..balance_count {
            let account = AccountIndex::from_le_bytes(reader.take("balance account")?);
            let transfer = TransferIndex::from_le_bytes(reader.take("balance transfer")?);
            let mut record = [0u8; OBJECT_SIZE];
            record[..72].copy_from_slice(&reader.take::<72>("balance")?);
            let balance = AccountBalance::from_bytes(&record).expect("reserved bytes are zero");
            if account >= store.account_count() || transfer >= store.transfer_count() {
                return Err(inconsistent(format!("balance entry names account {account} / transfer {transfer}")));
            }
            if !store.account(account).flags.contains(AccountFlags::HISTORY) {
                return Err(inconsistent(format!("balance entry for account {account} without history")));
            }
            let previous = store.balances(account).last().map(|last| last.balance.timestamp);
            if previous.is_some_and(|previous| previous >= balance.timestamp) || balance.timestamp > timestamp_last {
                return Err(inconsistent(format!("balance entries of account {account} out of order")));
            }
            store.push_balance(account, BalanceEntry { balance, transfer, sequence });
        }

        let failed_count = reader.count("failed transfer ids", 16)?;
        let mut failed = HashSet::new();
        for _ in 0..failed_count {
            let id = u128::from_le_bytes(reader.take("failed transfer id")?);
            if !failed.insert(id) || store.transfer_index(id).is_some() {
                return Err(inconsistent(format!("failed transfer id {id} is repeated or exists")));
            }
            store.insert_failed_transfer_id(id);
        }
        let written: [u8; 32] = reader.take("digest")?;
        if reader.offset != body.len() {
            return Err(RestoreError::TrailingBytes(body.len() - reader.offset));
        }

        let commitment = Commitment::rebuild(&store, timestamp_last);
        if commitment.digest() != written {
            return Err(RestoreError::DigestMismatch { written: hex(&written), restored: hex(&commitment.digest()) });
        }
        // The whole snapshot was loaded as one batch: its index entries go into their runs.
        store.end_batch();
        Ok(Ledger { store, commitment, timestamp_last, scope: None, changes: Changes::default() })
    }
}

/// The invariants the rules keep for every account, which a snapshot must not break: fields the
/// rules refuse to create, balance sums that fit, and balance limits that hold.
fn check_account(account: &Account) -> Result<(), RestoreError> {
    let broken = |what: &str| Err(inconsistent(format!("account {} {what}", account.id)));
    let limits = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    if account.flags.has_reserved_bits() || account.flags.contains(limits) || account.reserved != 0 {
        return broken("has reserved or exclusive flags, or a reserved field");
    }
    if account.ledger == 0 || account.code == 0 {
        return broken("has a zero ledger or code");
    }
    let (Some(debits), Some(credits)) = (
        account.debits_pending.checked_add(account.debits_posted),
        account.credits_pending.checked_add(account.credits_posted),
    ) else {
        return broken("has balances that overflow");
    };
    if (account.flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) && debits > account.credits_posted)
        || (account.flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) && credits > account.debits_posted)
    {
        return broken("breaks its balance limit");
    }
    Ok(())
}

/// Adds a transfer's effect to the balances its accounts must have.
fn apply_to_expected(store: &MemoryStore, expected: &mut [[u128; 4]], transfer: &Transfer) -> Result<(), RestoreError> {
    let overflow = || inconsistent(format!("transfer {} overflows its accounts' balances", transfer.id));
    let debit = store.account_index(transfer.debit_account_id).expect("checked") as usize;
    let credit = store.account_index(transfer.credit_account_id).expect("checked") as usize;
    let index = store.transfer_index(transfer.id).expect("pushed");
    let add = |value: &mut u128, amount: u128| -> Result<(), RestoreError> {
        *value = value.checked_add(amount).ok_or_else(overflow)?;
        Ok(())
    };
    let flags = transfer.flags;
    if flags.contains(TransferFlags::PENDING) {
        if store.pending_status(index) == Some(PendingStatus::Pending) {
            add(&mut expected[debit][0], transfer.amount)?;
            add(&mut expected[credit][2], transfer.amount)?;
        }
    } else if flags.contains(TransferFlags::VOID_PENDING_TRANSFER) {
        // A void moves nothing; its pending transfer no longer counts as pending.
    } else {
        // A single-phase transfer or a post: posted amounts.
        add(&mut expected[debit][1], transfer.amount)?;
        add(&mut expected[credit][3], transfer.amount)?;
    }
    Ok(())
}

fn inconsistent(message: String) -> RestoreError {
    RestoreError::Inconsistent(message)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Reads the body of a snapshot, checking lengths before allocating.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RestoreError> {
        let end = self.offset + N;
        if end > self.bytes.len() {
            return Err(RestoreError::Truncated { what, needed: (end - self.bytes.len()) as u64 });
        }
        let field = self.bytes[self.offset..end].try_into().expect("N bytes");
        self.offset = end;
        Ok(field)
    }

    /// A count of records of `size` bytes, refused if the bytes left cannot hold them.
    fn count(&mut self, what: &'static str, size: usize) -> Result<u64, RestoreError> {
        let count = u64::from_le_bytes(self.take(what)?);
        let left = (self.bytes.len() - self.offset) as u64;
        if count.checked_mul(size as u64).is_none_or(|needed| needed > left) {
            return Err(RestoreError::Truncated { what, needed: count.saturating_mul(size as u64) - left });
        }
        Ok(count)
    }
}
