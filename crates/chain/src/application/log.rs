//! The finalized block log: every finalized block, in height order, on disk.
//!
//! A Commonware contiguous variable journal (one item per block, position = height - 1). Blocks
//! are appended and fsynced after they are finalized and executed, and before any outcome of
//! theirs is answered. On start the log is replayed to rebuild the ledger. Storage errors are
//! fail-stop: the caller halts the validator.

use crate::block::Block;
use crate::constants::BLOCK_SIZE_MAX;
use crate::error::ChainError;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::journal::contiguous::{Contiguous as _, variable};
use commonware_utils::{NZU16, NZU64, NZUsize};

/// Blocks per journal section (file).
const BLOCKS_PER_SECTION: u64 = 1_024;
/// Read and write buffers: one largest block.
const BUFFER_SIZE: usize = BLOCK_SIZE_MAX;
const PAGE_SIZE: u16 = 4_096;
const PAGE_CACHE_PAGES: usize = 256;

/// The on-disk log of finalized blocks.
pub struct FinalizedLog<E: commonware_storage::Context> {
    /// `None` only after a failed operation consumed it (the validator halts then).
    journal: Option<variable::Journal<E, Block>>,
}

impl<E: commonware_storage::Context> std::fmt::Debug for FinalizedLog<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalizedLog").field("blocks", &self.len()).finish()
    }
}

fn storage_error(error: impl std::fmt::Display) -> ChainError {
    ChainError::Storage(error.to_string())
}

impl<E: commonware_storage::Context> FinalizedLog<E> {
    /// Opens (or creates) the log in `partition` and reads back every block in it.
    pub async fn open(context: E, partition: String) -> Result<(Self, Vec<Block>), ChainError> {
        let config = variable::Config {
            partition,
            items_per_section: NZU64!(BLOCKS_PER_SECTION),
            compression: None,
            codec_config: (),
            page_cache: CacheRef::new(NZU16!(PAGE_SIZE), NZUsize!(PAGE_CACHE_PAGES)),
            write_buffer: NZUsize!(BUFFER_SIZE),
            replay_buffer: NZUsize!(BUFFER_SIZE),
        };
        let journal = variable::Journal::<E, Block>::init(context, config).await.map_err(storage_error)?;
        let bounds = journal.bounds();
        assert_eq!(bounds.start, 0, "the finalized log is never pruned");
        let mut blocks = Vec::with_capacity(bounds.end as usize);
        for position in bounds {
            let block = journal.read(position).await.map_err(storage_error)?;
            if block.height != position + 1 {
                return Err(ChainError::Storage(format!(
                    "log position {position} holds height {} (corrupt log)",
                    block.height
                )));
            }
            blocks.push(block);
        }
        Ok((Self { journal: Some(journal) }, blocks))
    }

    /// The number of blocks in the log (the highest persisted height).
    pub fn len(&self) -> u64 {
        self.journal.as_ref().map_or(0, |journal| journal.bounds().end)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends blocks (the next heights, in order) and syncs them to disk.
    pub async fn append(&mut self, blocks: &[Block]) -> Result<(), ChainError> {
        let mut journal = self.journal.take().ok_or_else(|| storage_error("log failed earlier"))?;
        for block in blocks {
            assert_eq!(block.height, journal.bounds().end + 1, "the log grows by one height at a time");
            let (next, _position) = journal.append(block).await.map_err(storage_error)?;
            journal = next;
        }
        journal = journal.sync().await.map_err(storage_error)?;
        self.journal = Some(journal);
        Ok(())
    }
}
