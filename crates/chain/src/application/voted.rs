//! The blocks this validator vouched for: every block it proposed or verified, on disk before
//! Simplex learns the verdict, until the finalized log holds its height.
//!
//! Simplex journals its votes and certificates, so after a crash it remembers that a block was
//! notarized and builds on it. The block itself must survive too: if every validator kept its
//! unfinalized blocks only in memory, a cluster-wide power loss would leave a notarized block
//! that nobody can produce, and the chain would stall for good. Writing each block before
//! voting for it means a notarized block (2f + 1 votes) is on the disks of at least f + 1 honest
//! validators, which serve it to the others after a restart.
//!
//! A Commonware segmented journal, one section per height, pruned below the finalized height.
//! Storage errors are fail-stop: the caller halts the validator.

use crate::block::{Block, BlockDigest};
use crate::constants::BLOCK_SIZE_MAX;
use crate::error::ChainError;
use commonware_runtime::ReadOptions;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_storage::journal::segmented::variable;
use commonware_utils::{NZU16, NZUsize};
use std::collections::{BTreeMap, BTreeSet};

const PAGE_SIZE: u16 = 4_096;
const PAGE_CACHE_PAGES: usize = 64;
/// Write buffer per open section: a few typical blocks (larger blocks are written through).
const WRITE_BUFFER: usize = 64 * 1024;

/// The on-disk store of vouched-for blocks. See the module documentation.
pub struct VotedBlocks<E: commonware_storage::Context> {
    /// `None` only after a failed operation consumed it (the validator halts then).
    journal: Option<variable::Journal<E, Block>>,
    /// Digests written, by height, to write each block once.
    written: BTreeMap<u64, BTreeSet<BlockDigest>>,
    /// Heights appended to since the last sync.
    unsynced: BTreeSet<u64>,
}

impl<E: commonware_storage::Context> std::fmt::Debug for VotedBlocks<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VotedBlocks").field("heights", &self.written.len()).finish()
    }
}

fn storage_error(error: impl std::fmt::Display) -> ChainError {
    ChainError::Storage(format!("voted blocks: {error}"))
}

impl<E: commonware_storage::Context> VotedBlocks<E> {
    /// Opens (or creates) the store in `partition` and reads back every block in it, in height
    /// order. A torn tail (a crash mid-write) is cut off by the journal.
    pub async fn open(context: E, partition: String) -> Result<(Self, Vec<Block>), ChainError> {
        let config = variable::Config {
            partition,
            compression: None,
            codec_config: (),
            page_cache: CacheRef::new(NZU16!(PAGE_SIZE), NZUsize!(PAGE_CACHE_PAGES)),
            write_buffer: NZUsize!(WRITE_BUFFER),
        };
        let journal = variable::Journal::<E, Block>::init(context, config).await.map_err(storage_error)?;
        let mut replay =
            journal.replay(0, 0, NZUsize!(BLOCK_SIZE_MAX), ReadOptions::default()).await.map_err(storage_error)?;
        let mut blocks = Vec::new();
        let mut written: BTreeMap<u64, BTreeSet<BlockDigest>> = BTreeMap::new();
        while let Some(item) = replay.next().await {
            let (section, _offset, _size, block) = item.map_err(storage_error)?;
            if block.header.height != section {
                return Err(storage_error(format!(
                    "section {section} holds a block of height {}",
                    block.header.height
                )));
            }
            if written.entry(section).or_default().insert(block.digest()) {
                blocks.push(block);
            }
        }
        let journal = replay.finish().map_err(storage_error)?;
        Ok((Self { journal: Some(journal), written, unsynced: BTreeSet::new() }, blocks))
    }

    /// Appends a block unless it is already stored. Not durable until [`Self::sync`].
    pub async fn append(&mut self, block: &Block) -> Result<(), ChainError> {
        if !self.written.entry(block.header.height).or_default().insert(block.digest()) {
            return Ok(());
        }
        let journal = self.journal.take().ok_or_else(|| storage_error("failed earlier"))?;
        let (journal, _offset, _size) = journal.append(block.header.height, block).await.map_err(storage_error)?;
        self.journal = Some(journal);
        self.unsynced.insert(block.header.height);
        Ok(())
    }

    /// Makes every appended block durable.
    pub async fn sync(&mut self) -> Result<(), ChainError> {
        if self.unsynced.is_empty() {
            return Ok(());
        }
        let journal = self.journal.take().ok_or_else(|| storage_error("failed earlier"))?;
        let sections: Vec<u64> = std::mem::take(&mut self.unsynced).into_iter().collect();
        let journal = journal.sync(sections).await.map_err(storage_error)?;
        self.journal = Some(journal);
        Ok(())
    }

    /// Forgets blocks at or below `height`, once the finalized log holds that height durably.
    pub async fn prune(&mut self, height: u64) -> Result<(), ChainError> {
        let Some((&lowest, _)) = self.written.first_key_value() else {
            return Ok(());
        };
        if lowest > height {
            return Ok(());
        }
        self.written = self.written.split_off(&(height + 1));
        self.unsynced = self.unsynced.split_off(&(height + 1));
        let journal = self.journal.take().ok_or_else(|| storage_error("failed earlier"))?;
        let (journal, _pruned) = journal.prune(height + 1).await.map_err(storage_error)?;
        self.journal = Some(journal);
        Ok(())
    }
}
