//! The finalized block log: every finalized block, in height order, with the outcome of each of
//! its requests, on disk.
//!
//! A Commonware contiguous variable journal (one record per block, position = height - 1).
//! Records are appended and fsynced after their blocks are finalized and executed, and before
//! any outcome of theirs is answered. A restart restores the latest snapshot and executes only
//! the blocks after it; older blocks and outcomes are read from here when asked for, so memory
//! holds only recent ones. A validator that joined from a peer's snapshot has a log that starts
//! above genesis (`start`). Storage errors are fail-stop: the caller halts the validator.
//!
//! Damage is not a storage error. A record that fails its checksum, does not decode, or sits at
//! the wrong position reads as `ChainError::LogDamaged`; the validator fetches it again from a
//! peer (checked against a finalization certificate, see `repair.rs`) or rebuilds it from the
//! block marshal holds, and `repair` keeps the good record beside the journal (which is
//! append-only): one blob per repaired height in `{partition}-repaired`, holding the SHA-256 of
//! the record followed by the record. A read consults the repaired records first.
//!
//! Record format (big-endian): `block length (4) | block | per request: (timestamp ns (8) |
//! result) | finalization`. A result is encoded as under the results root (`execution.rs`):
//! `1 | count (4) | count × (timestamp (8), status (4))` for accounts, `2 | …` the same for
//! transfers, or `3 | batch error` for a refused batch. The finalization is `0` (none) or `1`
//! and Simplex's finalization certificate of the block.

use crate::application::snapshots::scan_heights;
use crate::block::{Block, hash};
use crate::consensus::{Finalization, Scheme};
use crate::constants::BLOCK_SIZE_MAX;
use crate::error::ChainError;
use crate::execution::{RequestOutcome, RequestResult};
use bytes::{Buf as _, BufMut};
use commonware_codec::Encode as _;
use commonware_codec::{Buf, Decode as _, EncodeSize, Error as CodecError, Read, ReadExt as _, Write};
use commonware_cryptography::certificate::Verifier as _;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Blob as _, ReadOptions, WriteOptions};
use commonware_storage::journal::contiguous::{Contiguous as _, variable};
use commonware_utils::{NZU16, NZUsize};
use std::collections::BTreeSet;

/// Blocks per journal section (file), unless the validator is configured otherwise
/// (`ConsensusConfig::log_blocks_per_section`). A log is always opened with the section size it
/// was written with.
pub const BLOCKS_PER_SECTION: u64 = 1_024;
/// Read and write buffers: one largest block.
const BUFFER_SIZE: usize = BLOCK_SIZE_MAX;
const PAGE_SIZE: u16 = 4_096;
const PAGE_CACHE_PAGES: usize = 256;

/// One finalized block and what its requests' outcomes were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub block: Block,
    /// One per request, in block order.
    pub outcomes: Vec<RequestOutcome>,
    /// The block's own finalization certificate, if Simplex reported one for it before it was
    /// written (a block finalized only as an ancestor of a later one has none).
    pub finalization: Option<Finalization>,
}

impl Write for LogRecord {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u32(u32::try_from(self.block.encode_size()).expect("blocks fit in u32"));
        self.block.write(buf);
        for outcome in &self.outcomes {
            buf.put_u64(outcome.timestamp_ns);
            outcome.result.write(buf);
        }
        match &self.finalization {
            None => buf.put_u8(0),
            Some(finalization) => {
                buf.put_u8(1);
                finalization.write(buf);
            }
        }
    }
}

impl EncodeSize for LogRecord {
    fn encode_size(&self) -> usize {
        let outcomes: usize = self.outcomes.iter().map(|outcome| 8 + outcome.result.encode_size()).sum();
        let finalization = 1 + self.finalization.as_ref().map_or(0, EncodeSize::encode_size);
        4 + self.block.encode_size() + outcomes + finalization
    }
}

impl Read for LogRecord {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let length = u32::read(buf)? as usize;
        if length > BLOCK_SIZE_MAX || buf.remaining() < length {
            return Err(CodecError::InvalidLength(length));
        }
        let block = Block::decode_cfg(buf.copy_to_bytes(length), &())?;
        let mut outcomes = Vec::with_capacity(block.requests.len());
        for request in &block.requests {
            let timestamp_ns = u64::read(buf)?;
            let result = RequestResult::read(buf)?;
            // The digest is not stored: the block beside the outcomes holds the request itself.
            outcomes.push(RequestOutcome {
                events_digest: request.events_digest(),
                height: block.header.height,
                timestamp_ns,
                result,
            });
        }
        let finalization = match u8::read(buf)? {
            0 => None,
            // This validator's own disk, behind the journal's checksums: the committee bound was
            // checked when the certificate was verified.
            1 => Some(Finalization::read_cfg(buf, &Scheme::certificate_codec_config_unbounded())?),
            _ => return Err(CodecError::Invalid("LogRecord", "finalization tag")),
        };
        Ok(Self { block, outcomes, finalization })
    }
}

/// The on-disk log of finalized blocks.
pub struct FinalizedLog<E: commonware_storage::Context> {
    context: E,
    partition: String,
    /// `None` only after a failed operation consumed it (the validator halts then).
    journal: Option<variable::Journal<E, LogRecord>>,
    /// Heights whose record was repaired (and is read from `{partition}-repaired`).
    repaired: BTreeSet<u64>,
    blocks_per_section: u64,
}

impl<E: commonware_storage::Context> std::fmt::Debug for FinalizedLog<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalizedLog").field("start", &self.start()).field("blocks", &self.len()).finish()
    }
}

fn storage_error(error: impl std::fmt::Display) -> ChainError {
    ChainError::Storage(format!("finalized log: {error}"))
}

fn damaged(height: u64, partition: &str, blocks_per_section: u64, detail: impl std::fmt::Display) -> ChainError {
    let section = (height - 1) / blocks_per_section;
    ChainError::LogDamaged { height, file: format!("{partition}_data/{section:016x}"), detail: detail.to_string() }
}

fn repaired_partition(partition: &str) -> String {
    format!("{partition}-repaired")
}

fn config(partition: String, blocks_per_section: u64) -> variable::Config<()> {
    variable::Config {
        partition,
        items_per_section: std::num::NonZeroU64::new(blocks_per_section).expect("sections hold blocks"),
        compression: None,
        codec_config: (),
        page_cache: CacheRef::new(NZU16!(PAGE_SIZE), NZUsize!(PAGE_CACHE_PAGES)),
        write_buffer: NZUsize!(BUFFER_SIZE),
        replay_buffer: NZUsize!(BUFFER_SIZE),
    }
}

impl<E: commonware_storage::Context> FinalizedLog<E> {
    /// Opens (or creates) the log in `partition`, `BLOCKS_PER_SECTION` blocks per section.
    pub async fn open(context: E, partition: String) -> Result<Self, ChainError> {
        Self::open_with_sections(context, partition, BLOCKS_PER_SECTION).await
    }

    /// Opens (or creates) the log in `partition`, `blocks_per_section` blocks per section (the
    /// size it was written with).
    pub async fn open_with_sections(
        context: E,
        partition: String,
        blocks_per_section: u64,
    ) -> Result<Self, ChainError> {
        assert!(blocks_per_section > 0, "sections hold blocks");
        let journal = variable::Journal::<E, LogRecord>::init(
            context.child("journal"),
            config(partition.clone(), blocks_per_section),
        )
        .await
        .map_err(|error| {
            ChainError::Storage(format!(
                "finalized log: {error}: the journal in the data directory's `{partition}_data` and \
                     `{partition}_offsets` cannot be opened (damaged?): {} (the other validators answer for \
                     what was finalized before it)",
                crate::votes::REJOIN_ADVICE
            ))
        })?;
        let repaired = scan_heights(&context, &repaired_partition(&partition)).await.map_err(storage_error)?;
        let repaired = repaired.into_iter().collect();
        Ok(Self { context, partition, journal: Some(journal), repaired, blocks_per_section })
    }

    /// The highest height in the log (0 when empty from genesis).
    pub fn len(&self) -> u64 {
        self.journal.as_ref().map_or(0, |journal| journal.bounds().end)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == self.start()
    }

    /// The height below the first record: 0 for a log from genesis, the snapshot's height for a
    /// validator that joined from a peer's snapshot.
    pub fn start(&self) -> u64 {
        self.journal.as_ref().map_or(0, |journal| journal.bounds().start)
    }

    /// The record of the block at `height`, if the log holds it.
    pub async fn read(&self, height: u64) -> Result<Option<LogRecord>, ChainError> {
        let journal = self.journal.as_ref().ok_or_else(|| storage_error("failed earlier"))?;
        if height <= journal.bounds().start || height > journal.bounds().end {
            return Ok(None);
        }
        if self.repaired.contains(&height) {
            return self.read_repaired(height).await.map(Some);
        }
        // Every failure to read a record within bounds is damage to this record (a checksum, a
        // decode, an offset): it can be repaired. A disk that fails outright fails the repair's
        // write too, and that halts.
        let record = journal
            .read(height - 1)
            .await
            .map_err(|error| damaged(height, &self.partition, self.blocks_per_section, error))?;
        if record.block.header.height != height {
            let detail = format!("position {} holds height {}", height - 1, record.block.header.height);
            return Err(damaged(height, &self.partition, self.blocks_per_section, detail));
        }
        Ok(Some(record))
    }

    async fn read_repaired(&self, height: u64) -> Result<LogRecord, ChainError> {
        let partition = repaired_partition(&self.partition);
        let file = || format!("{partition}/{height:016x}");
        let (blob, length) = self.context.open(&partition, &height.to_be_bytes()).await.map_err(storage_error)?;
        let length = usize::try_from(length).map_err(storage_error)?;
        let bytes = blob.read_at(0, length, ReadOptions::default()).await.map_err(storage_error)?;
        let bytes = bytes.coalesce().as_ref().to_vec();
        let damaged = |detail: &str| ChainError::LogDamaged { height, file: file(), detail: detail.to_string() };
        if bytes.len() < 32 || hash(&bytes[32..]).as_ref() != &bytes[..32] {
            return Err(damaged("the repaired record fails its checksum"));
        }
        let record = LogRecord::decode_cfg(bytes::Bytes::copy_from_slice(&bytes[32..]), &())
            .map_err(|_| damaged("the repaired record does not decode"))?;
        if record.block.header.height != height {
            return Err(damaged("the repaired record is of another height"));
        }
        Ok(record)
    }

    /// Keeps `record`, checked by the caller, in place of the damaged record at its height, and
    /// syncs it.
    pub async fn repair(&mut self, record: &LogRecord) -> Result<(), ChainError> {
        let height = record.block.header.height;
        assert!(height > self.start() && height <= self.len(), "only a height the log holds is repaired");
        let encoded = record.encode();
        let mut bytes = Vec::with_capacity(32 + encoded.len());
        bytes.extend_from_slice(hash(&encoded).as_ref());
        bytes.extend_from_slice(&encoded);
        let partition = repaired_partition(&self.partition);
        let (blob, _) = self.context.open(&partition, &height.to_be_bytes()).await.map_err(storage_error)?;
        blob.resize(0).await.map_err(storage_error)?;
        blob.write_at(0, bytes, WriteOptions::default()).await.map_err(storage_error)?;
        blob.sync().await.map_err(storage_error)?;
        self.repaired.insert(height);
        Ok(())
    }

    /// The partition the log's records live in, for messages to the operator.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// Every block in the log, in height order (for checkers and tools; a validator reads only
    /// what it needs).
    pub async fn blocks(&self) -> Result<Vec<Block>, ChainError> {
        let mut blocks = Vec::new();
        for height in self.start() + 1..=self.len() {
            let record = self.read(height).await?.expect("within bounds");
            blocks.push(record.block);
        }
        Ok(blocks)
    }

    /// Appends records (the next heights, in order) and syncs them to disk.
    pub async fn append(&mut self, records: &[LogRecord]) -> Result<(), ChainError> {
        let mut journal = self.journal.take().ok_or_else(|| storage_error("failed earlier"))?;
        for record in records {
            assert_eq!(record.block.header.height, journal.bounds().end + 1, "the log grows by one height at a time");
            let (next, _position) = journal.append(record).await.map_err(storage_error)?;
            journal = next;
        }
        journal = journal.sync().await.map_err(storage_error)?;
        self.journal = Some(journal);
        Ok(())
    }

    /// Empties the log and starts it above `height`: a validator adopting a peer's snapshot at
    /// `height` keeps the blocks after it.
    pub async fn restart_above(&mut self, height: u64) -> Result<(), ChainError> {
        self.journal = None;
        if !self.repaired.is_empty() {
            self.context.remove(&repaired_partition(&self.partition), None).await.map_err(storage_error)?;
            self.repaired.clear();
        }
        let journal = variable::Journal::<E, LogRecord>::init_at_size(
            self.context.child("journal"),
            config(self.partition.clone(), self.blocks_per_section),
            height,
        )
        .await
        .map_err(storage_error)?;
        self.journal = Some(journal);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockContext;
    use crate::block::hash;
    use crate::keys::signer_from_seed;
    use crate::request::Request;
    use commonware_runtime::{Runner as _, Storage as _, Supervisor as _, deterministic};
    use tally_ledger::{
        Account, BatchError, CreateAccountResult, CreateAccountStatus, CreateTransferResult, CreateTransferStatus,
        Transfer,
    };

    /// An expiry ahead of every block timestamp these tests use (a few seconds after 1970).
    const EXPIRES_NS: u64 = 300_000_000_000;

    fn test_leader() -> crate::keys::ValidatorKey {
        crate::keys::public_key(&crate::keys::signer_from_seed(0))
    }

    #[test]
    fn records_round_trip_every_kind_of_result() {
        let client = signer_from_seed(3);
        let account = Account { id: 1, ledger: 1, code: 1, ..Account::default() };
        let transfer =
            Transfer { id: 1, debit_account_id: 1, credit_account_id: 2, ledger: 1, code: 1, ..Transfer::default() };
        let requests = vec![
            Request::create_accounts(1, 1, EXPIRES_NS, &client, &[account]).unwrap(),
            Request::create_transfers(1, 2, EXPIRES_NS, &client, &[transfer, transfer]).unwrap(),
            Request::create_transfers(1, 3, EXPIRES_NS, &client, &[transfer]).unwrap(),
        ];
        let digests: Vec<_> = requests.iter().map(Request::events_digest).collect();
        let commitment = crate::block::Commitment { state_digest: [3; 32], results_root: hash(b"results") };
        let block =
            Block::new(BlockContext::following(hash(b"parent"), 4, test_leader()), 4, 9_000, commitment, requests);
        let outcome = |index: usize, timestamp_ns, result| RequestOutcome {
            events_digest: digests[index],
            height: 4,
            timestamp_ns,
            result,
        };
        let record = LogRecord {
            block,
            outcomes: vec![
                outcome(
                    0,
                    9_000,
                    RequestResult::Accounts(vec![CreateAccountResult {
                        timestamp: 9_000,
                        status: CreateAccountStatus::Created,
                    }]),
                ),
                outcome(
                    1,
                    9_001,
                    RequestResult::Transfers(vec![
                        CreateTransferResult { timestamp: 9_001, status: CreateTransferStatus::Created },
                        CreateTransferResult {
                            timestamp: 9_002,
                            status: CreateTransferStatus::ExistsWithDifferentAmount,
                        },
                    ]),
                ),
                outcome(2, 9_003, RequestResult::Refused(BatchError::TimestampRegressed { timestamp: 5, previous: 7 })),
            ],
            finalization: None,
        };
        let encoded = record.encode();
        assert_eq!(encoded.len(), record.encode_size());
        assert_eq!(LogRecord::decode_cfg(encoded.clone(), &()).unwrap(), record);

        // An unknown status code or a cut record is refused, not misread.
        let status_at = 4 + record.block.encode_size() + 8 + 5 + 8;
        let mut unknown = encoded.to_vec();
        unknown[status_at..status_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(LogRecord::decode_cfg(bytes::Bytes::from(unknown), &()).is_err());
        assert!(LogRecord::decode_cfg(encoded.slice(..encoded.len() - 1), &()).is_err());

        // With the block's finalization certificate.
        let signers: Vec<_> = (0..4).map(signer_from_seed).collect();
        let genesis =
            crate::genesis::Genesis::new(1, signers.iter().map(crate::keys::public_key).collect(), vec![], 0).unwrap();
        let finalization = crate::certified::sign_finalization(&record.block.header, &signers[..3], &genesis);
        let certified = LogRecord { finalization: Some(finalization), ..record };
        let encoded = certified.encode();
        assert_eq!(encoded.len(), certified.encode_size());
        assert_eq!(LogRecord::decode_cfg(encoded.clone(), &()).unwrap(), certified);
        let mut tag = encoded.to_vec();
        tag[encoded.len() - certified.finalization.as_ref().unwrap().encode_size() - 1] = 2;
        assert!(LogRecord::decode_cfg(bytes::Bytes::from(tag), &()).is_err());
    }

    /// A chain of `count` empty blocks' records.
    fn records(count: u64) -> Vec<LogRecord> {
        let mut parent = hash(b"genesis");
        let commitment = crate::block::Commitment { state_digest: [0; 32], results_root: hash(b"results") };
        (1..=count)
            .map(|height| {
                let context = BlockContext::following(parent, height, test_leader());
                let block = Block::new(context, height, height * 10, commitment, Vec::new());
                parent = block.digest();
                LogRecord { block, outcomes: Vec::new(), finalization: None }
            })
            .collect()
    }

    #[test]
    fn a_damaged_record_reads_as_damage_naming_its_file_until_it_is_repaired() {
        deterministic::Runner::default().start(|context| async move {
            let partition = "log".to_string();
            let mut log = FinalizedLog::open(context.child("log"), partition.clone()).await.unwrap();
            // Three sections: the journal checks its last two when it opens, not older ones.
            let records = records(2 * BLOCKS_PER_SECTION + 40);
            log.append(&records).await.unwrap();
            drop(log);

            // Flip one byte in the middle of the first section's data.
            let flip = |section: u64| {
                let context = context.child("flip");
                async move {
                    let (blob, size) = context.open("log_data", &section.to_be_bytes()).await.unwrap();
                    let middle = size / 2;
                    let byte = blob.read_at(middle, 1, ReadOptions::default()).await.unwrap().coalesce().as_ref()[0];
                    blob.write_at(middle, vec![byte ^ 0x40], WriteOptions::default()).await.unwrap();
                    blob.sync().await.unwrap();
                }
            };
            flip(0).await;

            let mut log = FinalizedLog::open(context.child("log"), partition.clone()).await.unwrap();
            assert_eq!(log.len(), records.len() as u64, "damage in an old record does not shorten the log");
            let mut damaged = Vec::new();
            for record in &records {
                let height = record.block.header.height;
                match log.read(height).await {
                    Ok(read) => assert_eq!(read.as_ref(), Some(record)),
                    Err(ChainError::LogDamaged { height: at, file, .. }) => {
                        assert_eq!((at, file.as_str()), (height, "log_data/0000000000000000"));
                        damaged.push(record.clone());
                    }
                    Err(other) => panic!("damage read as {other}"),
                }
            }
            assert!(!damaged.is_empty(), "the flipped byte damaged some record");
            for record in &damaged {
                log.repair(record).await.unwrap();
            }
            drop(log);

            // Repairs outlive a restart, and a damaged repaired record is damage again.
            let log = FinalizedLog::open(context.child("log"), partition.clone()).await.unwrap();
            for record in &records {
                assert_eq!(log.read(record.block.header.height).await.unwrap().as_ref(), Some(record));
            }
            drop(log);
            let height = damaged[0].block.header.height;
            let (blob, _) = context.open("log-repaired", &height.to_be_bytes()).await.unwrap();
            blob.write_at(40, vec![0xff, 0xff], WriteOptions::default()).await.unwrap();
            blob.sync().await.unwrap();
            drop(blob);
            let log = FinalizedLog::open(context.child("log"), partition.clone()).await.unwrap();
            assert!(matches!(log.read(height).await, Err(ChainError::LogDamaged { .. })));

            drop(log);

            // Damage in the current section stops the log from opening, naming its files.
            flip(2).await;
            let error = FinalizedLog::open(context.child("log"), partition.clone()).await.unwrap_err();
            assert!(error.to_string().contains("`log_data`"), "{error}");

            // A log restarted above a snapshot forgets its repairs.
            let mut log = FinalizedLog::open(context.child("other"), "other".to_string()).await.unwrap();
            log.append(&records[..4]).await.unwrap();
            log.repair(&records[1]).await.unwrap();
            log.restart_above(50).await.unwrap();
            assert!(context.scan("other-repaired").await.map_or(true, |names| names.is_empty()));
        });
    }
}
