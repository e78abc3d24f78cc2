//! The byte encoding of accounts, transfers and balances: TigerBeetle's 128-byte layout, every
//! integer little-endian, fields in declaration order. It is the leaf of the state digest, the
//! record of a snapshot and the event of a batch on the wire.

use crate::constants::{BATCH_EVENTS_MAX, OBJECT_SIZE};
use crate::types::{Account, AccountBalance, AccountFlags, Transfer, TransferFlags};

/// Why a byte string is not a batch of events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a batch is a whole number of {OBJECT_SIZE}-byte events, got {bytes} bytes")]
    PartialEvent { bytes: usize },
    #[error("a batch holds at most {max} events, got {events}")]
    BatchTooLong { events: usize, max: usize },
}

/// Reads little-endian integers off a fixed-size record.
struct Reader<'a> {
    bytes: &'a [u8; OBJECT_SIZE],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8; OBJECT_SIZE]) -> Self {
        Self { bytes, offset: 0 }
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let field = self.bytes[self.offset..self.offset + N].try_into().expect("N bytes");
        self.offset += N;
        field
    }

    fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }

    fn finish(self) {
        assert_eq!(self.offset, OBJECT_SIZE, "every byte of a record is a field");
    }
}

/// Writes little-endian integers into a fixed-size record.
struct Writer {
    bytes: [u8; OBJECT_SIZE],
    offset: usize,
}

impl Writer {
    fn new() -> Self {
        Self { bytes: [0; OBJECT_SIZE], offset: 0 }
    }

    fn put(&mut self, field: &[u8]) {
        self.bytes[self.offset..self.offset + field.len()].copy_from_slice(field);
        self.offset += field.len();
    }

    fn finish(self) -> [u8; OBJECT_SIZE] {
        assert_eq!(self.offset, OBJECT_SIZE, "every byte of a record is a field");
        self.bytes
    }
}

impl Account {
    /// The four balances as they appear in the encoding (bytes 16 to 80): debits pending and
    /// posted, credits pending and posted.
    pub fn balances_bytes(&self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        for (slot, balance) in bytes.chunks_exact_mut(16).zip([
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
        ]) {
            slot.copy_from_slice(&balance.to_le_bytes());
        }
        bytes
    }

    /// The 128-byte encoding.
    pub fn to_bytes(&self) -> [u8; OBJECT_SIZE] {
        let mut writer = Writer::new();
        writer.put(&self.id.to_le_bytes());
        writer.put(&self.debits_pending.to_le_bytes());
        writer.put(&self.debits_posted.to_le_bytes());
        writer.put(&self.credits_pending.to_le_bytes());
        writer.put(&self.credits_posted.to_le_bytes());
        writer.put(&self.user_data_128.to_le_bytes());
        writer.put(&self.user_data_64.to_le_bytes());
        writer.put(&self.user_data_32.to_le_bytes());
        writer.put(&self.reserved.to_le_bytes());
        writer.put(&self.ledger.to_le_bytes());
        writer.put(&self.code.to_le_bytes());
        writer.put(&self.flags.bits().to_le_bytes());
        writer.put(&self.timestamp.to_le_bytes());
        writer.finish()
    }

    /// Decodes the 128-byte encoding (any bytes are an account; the rules judge its fields).
    pub fn from_bytes(bytes: &[u8; OBJECT_SIZE]) -> Self {
        let mut reader = Reader::new(bytes);
        let account = Self {
            id: reader.u128(),
            debits_pending: reader.u128(),
            debits_posted: reader.u128(),
            credits_pending: reader.u128(),
            credits_posted: reader.u128(),
            user_data_128: reader.u128(),
            user_data_64: reader.u64(),
            user_data_32: reader.u32(),
            reserved: reader.u32(),
            ledger: reader.u32(),
            code: reader.u16(),
            flags: AccountFlags::from_bits_retain(reader.u16()),
            timestamp: reader.u64(),
        };
        reader.finish();
        account
    }
}

impl Transfer {
    /// The 128-byte encoding.
    pub fn to_bytes(&self) -> [u8; OBJECT_SIZE] {
        let mut writer = Writer::new();
        writer.put(&self.id.to_le_bytes());
        writer.put(&self.debit_account_id.to_le_bytes());
        writer.put(&self.credit_account_id.to_le_bytes());
        writer.put(&self.amount.to_le_bytes());
        writer.put(&self.pending_id.to_le_bytes());
        writer.put(&self.user_data_128.to_le_bytes());
        writer.put(&self.user_data_64.to_le_bytes());
        writer.put(&self.user_data_32.to_le_bytes());
        writer.put(&self.timeout.to_le_bytes());
        writer.put(&self.ledger.to_le_bytes());
        writer.put(&self.code.to_le_bytes());
        writer.put(&self.flags.bits().to_le_bytes());
        writer.put(&self.timestamp.to_le_bytes());
        writer.finish()
    }

    /// Decodes the 128-byte encoding (any bytes are a transfer; the rules judge its fields).
    pub fn from_bytes(bytes: &[u8; OBJECT_SIZE]) -> Self {
        let mut reader = Reader::new(bytes);
        let transfer = Self {
            id: reader.u128(),
            debit_account_id: reader.u128(),
            credit_account_id: reader.u128(),
            amount: reader.u128(),
            pending_id: reader.u128(),
            user_data_128: reader.u128(),
            user_data_64: reader.u64(),
            user_data_32: reader.u32(),
            timeout: reader.u32(),
            ledger: reader.u32(),
            code: reader.u16(),
            flags: TransferFlags::from_bits_retain(reader.u16()),
            timestamp: reader.u64(),
        };
        reader.finish();
        transfer
    }
}

impl AccountBalance {
    /// The 128-byte encoding (TigerBeetle's, with its 56 reserved bytes zero).
    pub fn to_bytes(&self) -> [u8; OBJECT_SIZE] {
        let mut writer = Writer::new();
        writer.put(&self.debits_pending.to_le_bytes());
        writer.put(&self.debits_posted.to_le_bytes());
        writer.put(&self.credits_pending.to_le_bytes());
        writer.put(&self.credits_posted.to_le_bytes());
        writer.put(&self.timestamp.to_le_bytes());
        writer.put(&[0; 56]);
        writer.finish()
    }

    /// Decodes the 128-byte encoding; `None` if a reserved byte is set.
    pub fn from_bytes(bytes: &[u8; OBJECT_SIZE]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let balance = Self {
            debits_pending: reader.u128(),
            debits_posted: reader.u128(),
            credits_pending: reader.u128(),
            credits_posted: reader.u128(),
            timestamp: reader.u64(),
        };
        let reserved: [u8; 56] = reader.take();
        reader.finish();
        reserved.iter().all(|byte| *byte == 0).then_some(balance)
    }
}

/// Splits a batch into its 128-byte records, refusing partial records and long batches.
fn records(bytes: &[u8]) -> Result<impl Iterator<Item = &[u8; OBJECT_SIZE]>, DecodeError> {
    if !bytes.len().is_multiple_of(OBJECT_SIZE) {
        return Err(DecodeError::PartialEvent { bytes: bytes.len() });
    }
    let events = bytes.len() / OBJECT_SIZE;
    if events > BATCH_EVENTS_MAX {
        return Err(DecodeError::BatchTooLong { events, max: BATCH_EVENTS_MAX });
    }
    Ok(bytes.chunks_exact(OBJECT_SIZE).map(|chunk| chunk.try_into().expect("exact chunk")))
}

/// Decodes a batch of accounts (at most `BATCH_EVENTS_MAX`).
pub fn decode_accounts(bytes: &[u8]) -> Result<Vec<Account>, DecodeError> {
    Ok(records(bytes)?.map(Account::from_bytes).collect())
}

/// Decodes a batch of transfers (at most `BATCH_EVENTS_MAX`).
pub fn decode_transfers(bytes: &[u8]) -> Result<Vec<Transfer>, DecodeError> {
    Ok(records(bytes)?.map(Transfer::from_bytes).collect())
}

/// Encodes a batch of accounts.
pub fn encode_accounts(accounts: &[Account]) -> Vec<u8> {
    accounts.iter().flat_map(|account| account.to_bytes()).collect()
}

/// Encodes a batch of transfers.
pub fn encode_transfers(transfers: &[Transfer]) -> Vec<u8> {
    transfers.iter().flat_map(|transfer| transfer.to_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let account = Account {
            id: 1 << 100 | 7,
            debits_pending: 2,
            debits_posted: 3 << 90,
            credits_pending: 4,
            credits_posted: 5,
            user_data_128: 6,
            user_data_64: 7,
            user_data_32: 8,
            reserved: 9,
            ledger: 10,
            code: 11,
            flags: AccountFlags::from_bits_retain(0xffff),
            timestamp: 12,
        };
        assert_eq!(Account::from_bytes(&account.to_bytes()), account);
        let transfer = Transfer {
            id: 1,
            debit_account_id: 2,
            credit_account_id: 3,
            amount: u128::MAX,
            pending_id: 5,
            user_data_128: 6,
            user_data_64: 7,
            user_data_32: 8,
            timeout: 9,
            ledger: 10,
            code: 11,
            flags: TransferFlags::PENDING | TransferFlags::LINKED,
            timestamp: u64::MAX,
        };
        assert_eq!(Transfer::from_bytes(&transfer.to_bytes()), transfer);
        let batch = encode_transfers(&[transfer, transfer]);
        assert_eq!(decode_transfers(&batch).unwrap(), vec![transfer, transfer]);
    }

    #[test]
    fn refuses_partial_and_long_batches() {
        assert_eq!(decode_accounts(&[0; 129]), Err(DecodeError::PartialEvent { bytes: 129 }));
        let long = vec![0; (BATCH_EVENTS_MAX + 1) * OBJECT_SIZE];
        assert_eq!(
            decode_transfers(&long),
            Err(DecodeError::BatchTooLong { events: BATCH_EVENTS_MAX + 1, max: BATCH_EVENTS_MAX })
        );
        assert_eq!(decode_transfers(&[]).unwrap(), vec![]);
    }
}
