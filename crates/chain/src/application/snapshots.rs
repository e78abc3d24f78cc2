//! The validator's snapshots on disk: the latest `ChainState` snapshot, one blob per height.
//!
//! A snapshot is written to a new blob named by its height and synced; only then is the one
//! before the previous removed (the previous stays, for peers still fetching it). A crash at any point leaves at least one complete snapshot (or none, before
//! the first), and a torn newer blob fails its checksum on open and is removed. Peers read a
//! snapshot in chunks (`read_chunk`) while this validator goes on.
//!
//! Storage errors while writing are fail-stop (the caller halts the validator); a snapshot that
//! cannot be read on open is skipped, since the finalized log can rebuild the state without it.

use crate::application::repair::REPAIR_CHUNK_SIZE;
use crate::application::snapshot_fetch::{ChunkHash, HashList, chunk_count};
use crate::certified::CertifiedHeader;
use crate::error::ChainError;
use crate::execution::ChainState;
use crate::genesis::Genesis;
use crate::snapshot::check_snapshot_proof;
use commonware_codec::Encode as _;
use commonware_runtime::{Blob as _, ReadOptions, Storage, WriteOptions};
use tracing::warn;

/// The size of one chunk of a snapshot sent to a peer.
pub const SNAPSHOT_CHUNK_SIZE: usize = 1024 * 1024;

/// The largest snapshot accepted from a peer (it is assembled in memory).
pub const SNAPSHOT_SIZE_MAX: u64 = 4 * 1024 * 1024 * 1024;

/// The most hashes in a chunk-hash list: one per chunk of a largest snapshot (128 KiB).
pub const CHUNK_HASHES_MAX: u64 = SNAPSHOT_SIZE_MAX.div_ceil(SNAPSHOT_CHUNK_SIZE as u64);

// A chunk, and a largest chunk-hash list, fit in a message.
const _: () = assert!(1 + 8 + 4 + SNAPSHOT_CHUNK_SIZE <= crate::constants::MESSAGE_SIZE_MAX);
const _: () = assert!(1 + 8 + 8 + CHUNK_HASHES_MAX * 32 <= crate::constants::MESSAGE_SIZE_MAX as u64);

/// A snapshot this validator holds: its height and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub height: u64,
    pub length: u64,
}

/// The snapshots of one validator.
pub struct Snapshots<E> {
    context: E,
    partition: String,
    /// The snapshots held, oldest first: the newest, and the one before it.
    held: Vec<SnapshotInfo>,
    /// The chunk-hash list of a held snapshot, computed when a peer first asks for it.
    hash_lists: Vec<(u64, HashList)>,
}

impl<E> std::fmt::Debug for Snapshots<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots").field("held", &self.held).finish()
    }
}

fn storage_error(error: impl std::fmt::Display) -> ChainError {
    ChainError::Storage(format!("snapshots: {error}"))
}

/// The heights a partition holds blobs for (each blob named by its height, 8 bytes big-endian),
/// in order; none if the partition does not exist yet.
pub(crate) async fn scan_heights<E: Storage>(
    context: &E,
    partition: &str,
) -> Result<Vec<u64>, commonware_runtime::Error> {
    let names = match context.scan(partition).await {
        Ok(names) => names,
        Err(commonware_runtime::Error::PartitionMissing(_)) => Vec::new(),
        Err(error) => return Err(error),
    };
    let mut heights: Vec<u64> =
        names.iter().filter_map(|name| <[u8; 8]>::try_from(name.as_slice()).ok().map(u64::from_be_bytes)).collect();
    heights.sort_unstable();
    Ok(heights)
}

fn name(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

impl<E: Storage> Snapshots<E> {
    /// Opens the store and restores the newest snapshot that reads back whole, removing those
    /// that do not (and any older ones).
    pub async fn open(context: E, partition: String) -> Result<(Self, Option<ChainState>), ChainError> {
        let mut heights = scan_heights(&context, &partition).await.map_err(storage_error)?;
        let mut store = Self { context, partition, held: Vec::new(), hash_lists: Vec::new() };
        let mut restored = None;
        while let Some(height) = heights.pop() {
            if restored.is_some() && store.held.len() == 1 {
                // The one before the newest, kept for peers (they check what they fetch).
                let (_, length) = store.context.open(&store.partition, &name(height)).await.map_err(storage_error)?;
                store.held.insert(0, SnapshotInfo { height, length });
                continue;
            }
            if restored.is_none() {
                // A read error stops the validator (the disk may come back); only a snapshot
                // whose bytes are wrong (torn by a crash) is removed.
                let bytes = store.read_whole(height).await?;
                match ChainState::restore(&bytes) {
                    Ok(state) if state.height() == height => {
                        store.held.push(SnapshotInfo { height, length: bytes.len() as u64 });
                        restored = Some(state);
                        continue;
                    }
                    Ok(state) => warn!(
                        partition = store.partition,
                        height,
                        found = state.height(),
                        "removing a snapshot that holds another height; the state is rebuilt from an older one and the log"
                    ),
                    Err(error) => warn!(
                        partition = store.partition,
                        height,
                        %error,
                        "removing a snapshot that does not read back whole (torn by a crash, or damaged); the state is \
                         rebuilt from an older one and the log"
                    ),
                }
            }
            store.context.remove(&store.partition, Some(&name(height))).await.map_err(storage_error)?;
        }
        Ok((store, restored))
    }

    async fn read_whole(&self, height: u64) -> Result<Vec<u8>, ChainError> {
        let (blob, length) = self.context.open(&self.partition, &name(height)).await.map_err(storage_error)?;
        let length = usize::try_from(length).map_err(storage_error)?;
        let bytes = blob.read_at(0, length, ReadOptions::default()).await.map_err(storage_error)?;
        Ok(bytes.coalesce().as_ref().to_vec())
    }

    /// The newest snapshot held.
    pub fn latest(&self) -> Option<SnapshotInfo> {
        self.held.last().copied()
    }

    /// Writes `bytes`, the snapshot at `height`, syncs it, then removes the older one.
    pub async fn write(&mut self, height: u64, bytes: Vec<u8>) -> Result<(), ChainError> {
        if self.latest().is_some_and(|latest| latest.height >= height) {
            return Ok(());
        }
        let length = bytes.len() as u64;
        let (blob, _) = self.context.open(&self.partition, &name(height)).await.map_err(storage_error)?;
        blob.resize(0).await.map_err(storage_error)?;
        blob.write_at(0, bytes, WriteOptions::default()).await.map_err(storage_error)?;
        blob.sync().await.map_err(storage_error)?;
        drop(blob);
        self.held.push(SnapshotInfo { height, length });
        if self.held.len() > 2 {
            let oldest = self.held.remove(0);
            self.hash_lists.retain(|(height, _)| *height != oldest.height);
            self.context.remove(&self.partition, Some(&name(oldest.height))).await.map_err(storage_error)?;
        }
        Ok(())
    }

    /// Chunk `index` of the snapshot at `height`, if it is held and the chunk exists.
    pub async fn read_chunk(&self, height: u64, index: u32) -> Option<Vec<u8>> {
        let latest = *self.held.iter().find(|held| held.height == height)?;
        let offset = u64::from(index) * SNAPSHOT_CHUNK_SIZE as u64;
        if offset >= latest.length {
            return None;
        }
        let length = (latest.length - offset).min(SNAPSHOT_CHUNK_SIZE as u64) as usize;
        let (blob, _) = self.context.open(&self.partition, &name(height)).await.ok()?;
        let bytes = blob.read_at(offset, length, ReadOptions::default()).await.ok()?;
        Some(bytes.coalesce().as_ref().to_vec())
    }

    /// The SHA-256 of each chunk of the snapshot at `height`, if it is held and reads back
    /// (read chunk by chunk the first time, then kept while the snapshot is).
    pub async fn chunk_hashes(&mut self, height: u64) -> Option<HashList> {
        if let Some((_, list)) = self.hash_lists.iter().find(|(held, _)| *held == height) {
            return Some(list.clone());
        }
        let held = *self.held.iter().find(|held| held.height == height)?;
        let count = u32::try_from(chunk_count(held.length)).ok()?;
        let mut hashes: Vec<ChunkHash> = Vec::with_capacity(count as usize);
        for index in 0..count {
            let chunk = self.read_chunk(height, index).await?;
            hashes.push(crate::application::snapshot_fetch::chunk_hash(&chunk));
        }
        let list = HashList { length: held.length, hashes };
        self.hash_lists.push((height, list.clone()));
        Some(list)
    }
}

/// Where a restored validator keeps its floor: the partition beside its snapshots.
pub fn floor_partition(snapshot_partition: &str) -> String {
    format!("{snapshot_partition}-floor")
}

/// The one blob of the floor partition.
const FLOOR_BLOB: &[u8] = b"floor";

/// Keeps `above`, the certified header of the block above a snapshot that `tally restore`
/// seeded, so that the validator's first start gives marshal that block's finalization as its
/// floor: it then fetches only the blocks above the snapshot, not the whole chain from genesis.
/// Written once, before the validator first starts; synced.
pub async fn write_floor<E: Storage>(context: &E, partition: &str, above: &CertifiedHeader) -> Result<(), ChainError> {
    let (blob, _) = context.open(partition, FLOOR_BLOB).await.map_err(storage_error)?;
    blob.resize(0).await.map_err(storage_error)?;
    blob.write_at(0, above.encode().to_vec(), WriteOptions::default()).await.map_err(storage_error)?;
    blob.sync().await.map_err(storage_error)
}

/// The floor `write_floor` kept, if there is one and it proves the block above `snapshot` (of
/// `genesis`'s chain): certified, naming the snapshot's block as its parent and committing to its
/// state digest. One that does not (damaged, or of another snapshot) is not an error: the
/// validator then fetches the chain from genesis, as one restored without a floor would, and
/// says so.
pub async fn read_floor<E: Storage>(
    context: &E,
    partition: &str,
    genesis: &Genesis,
    snapshot: &ChainState,
) -> Result<Option<CertifiedHeader>, ChainError> {
    let height = snapshot.height();
    // Opening a blob creates it: look first.
    match context.scan(partition).await {
        Ok(names) if names.iter().any(|name| name.as_slice() == FLOOR_BLOB) => {}
        Ok(_) | Err(commonware_runtime::Error::PartitionMissing(_)) => return Ok(None),
        Err(error) => return Err(storage_error(error)),
    }
    let (blob, length) = context.open(partition, FLOOR_BLOB).await.map_err(storage_error)?;
    let length = usize::try_from(length).map_err(storage_error)?;
    let bytes = blob.read_at(0, length, ReadOptions::default()).await.map_err(storage_error)?;
    let checked = CertifiedHeader::decode(bytes.coalesce().as_ref(), genesis)
        .map_err(|error| error.to_string())
        .and_then(|above| check_snapshot_proof(genesis, height, &above).map(|()| above).map_err(|e| e.to_string()))
        .and_then(|above| {
            let fits = above.header.parent == snapshot.block() && above.header.state_digest == snapshot.state_digest();
            fits.then_some(above).ok_or_else(|| String::from("it is of another block than the snapshot's"))
        });
    match checked {
        Ok(above) => Ok(Some(above)),
        Err(error) => {
            warn!(
                partition,
                height,
                %error,
                "the restored floor does not prove the block above the snapshot: fetching the chain from genesis instead"
            );
            Ok(None)
        }
    }
}

/// Messages of the snapshot channel: a validator on an empty disk, far behind, asks its peers what
/// snapshot they hold, then fetches one in chunks.
///
/// Wire format (big-endian): `1` (what do you hold?) | `2 | height (8) | length (8) | certified
/// header` (this, with the certified header of the block above it, `certified.rs`; a height of 0
/// and nothing after the length means none) | `3 | height (8) | index (4)` (send me this chunk) |
/// `4 | height (8) | index (4) | bytes` (a chunk, at most `SNAPSHOT_CHUNK_SIZE` bytes). A
/// validator repairing a damaged finalized record asks `5 | height (8) | index (4)` and is
/// answered `6 | height (8) | index (4) | length (8) | bytes` (a chunk of the repair bundle, at
/// most `REPAIR_CHUNK_SIZE` bytes, of a bundle `length` bytes long). A validator fetching a
/// snapshot asks `7 | height (8)` (the hash of each chunk) and is answered `8 | height (8) |
/// length (8) | hashes` (the SHA-256 of each chunk, 32 bytes each, exactly one per chunk of a
/// snapshot `length` bytes long, at most `SNAPSHOT_SIZE_MAX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotMessage {
    AskOffer,
    Offer {
        height: u64,
        length: u64,
        above: bytes::Bytes,
    },
    AskChunk {
        height: u64,
        index: u32,
    },
    Chunk {
        height: u64,
        index: u32,
        bytes: bytes::Bytes,
    },
    /// Send me chunk `index` of the bundle that repairs the finalized record at `height`.
    AskRecord {
        height: u64,
        index: u32,
    },
    /// A chunk of that bundle, which is `length` bytes long (`repair.rs`).
    RecordChunk {
        height: u64,
        index: u32,
        length: u64,
        bytes: bytes::Bytes,
    },
    /// Send me the hash of each chunk of your snapshot at `height`.
    AskChunkHashes {
        height: u64,
    },
    /// The hash of each chunk of the snapshot at `height`, `length` bytes long.
    ChunkHashes {
        height: u64,
        list: HashList,
    },
}

/// The most bytes of the certified header in an offer.
const OFFER_PROOF_SIZE_MAX: usize = 64 * 1024;

impl SnapshotMessage {
    /// An offer of nothing.
    pub fn none() -> Self {
        Self::Offer { height: 0, length: 0, above: bytes::Bytes::new() }
    }

    pub fn encode(&self) -> bytes::Bytes {
        use bytes::BufMut as _;
        let mut buf = Vec::new();
        match self {
            Self::AskOffer => buf.put_u8(1),
            Self::Offer { height, length, above } => {
                buf.put_u8(2);
                buf.put_u64(*height);
                buf.put_u64(*length);
                buf.put_slice(above);
            }
            Self::AskChunk { height, index } => {
                buf.put_u8(3);
                buf.put_u64(*height);
                buf.put_u32(*index);
            }
            Self::Chunk { height, index, bytes } => {
                buf.put_u8(4);
                buf.put_u64(*height);
                buf.put_u32(*index);
                buf.put_slice(bytes);
            }
            Self::AskRecord { height, index } => {
                buf.put_u8(5);
                buf.put_u64(*height);
                buf.put_u32(*index);
            }
            Self::RecordChunk { height, index, length, bytes } => {
                buf.put_u8(6);
                buf.put_u64(*height);
                buf.put_u32(*index);
                buf.put_u64(*length);
                buf.put_slice(bytes);
            }
            Self::AskChunkHashes { height } => {
                buf.put_u8(7);
                buf.put_u64(*height);
            }
            Self::ChunkHashes { height, list } => {
                buf.put_u8(8);
                buf.put_u64(*height);
                buf.put_u64(list.length);
                for hash in &list.hashes {
                    buf.put_slice(hash);
                }
            }
        }
        buf.into()
    }

    /// The message `bytes` hold, or `None` if they hold none (a faulty peer).
    pub fn decode(mut bytes: bytes::Bytes) -> Option<Self> {
        use bytes::Buf as _;
        let tag = bytes.try_get_u8().ok()?;
        let message = match tag {
            1 => Self::AskOffer,
            2 => {
                let (height, length) = (bytes.try_get_u64().ok()?, bytes.try_get_u64().ok()?);
                if bytes.len() > OFFER_PROOF_SIZE_MAX || (height == 0) != bytes.is_empty() {
                    return None;
                }
                return Some(Self::Offer { height, length, above: bytes });
            }
            3 => Self::AskChunk { height: bytes.try_get_u64().ok()?, index: bytes.try_get_u32().ok()? },
            4 => {
                let (height, index) = (bytes.try_get_u64().ok()?, bytes.try_get_u32().ok()?);
                if bytes.is_empty() || bytes.len() > SNAPSHOT_CHUNK_SIZE {
                    return None;
                }
                return Some(Self::Chunk { height, index, bytes });
            }
            5 => Self::AskRecord { height: bytes.try_get_u64().ok()?, index: bytes.try_get_u32().ok()? },
            6 => {
                let (height, index, length) =
                    (bytes.try_get_u64().ok()?, bytes.try_get_u32().ok()?, bytes.try_get_u64().ok()?);
                if bytes.is_empty() || bytes.len() > REPAIR_CHUNK_SIZE {
                    return None;
                }
                return Some(Self::RecordChunk { height, index, length, bytes });
            }
            7 => Self::AskChunkHashes { height: bytes.try_get_u64().ok()? },
            8 => {
                let (height, length) = (bytes.try_get_u64().ok()?, bytes.try_get_u64().ok()?);
                // The count is checked before anything is allocated.
                if length == 0 || length > SNAPSHOT_SIZE_MAX || bytes.len() as u64 != chunk_count(length) * 32 {
                    return None;
                }
                let hashes = bytes.chunks_exact(32).map(|hash| hash.try_into().expect("32 bytes")).collect();
                let list = HashList { length, hashes };
                assert!(list.is_well_formed());
                return Some(Self::ChunkHashes { height, list });
            }
            _ => return None,
        };
        bytes.is_empty().then_some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockContext;
    use crate::genesis::Genesis;
    use crate::keys::{public_key, signer_from_seed};
    use commonware_runtime::{Runner as _, Supervisor as _, deterministic};

    fn test_leader() -> crate::keys::ValidatorKey {
        crate::keys::public_key(&crate::keys::signer_from_seed(0))
    }

    /// A chain state at `height` (empty blocks on top of genesis).
    fn state_at(height: u64) -> ChainState {
        let genesis = Genesis::new(1, vec![public_key(&signer_from_seed(0))], Vec::new(), 0).unwrap();
        let mut state = ChainState::genesis(&genesis.block());
        for next in 1..=height {
            let block = crate::block::Block::new(
                BlockContext::following(state.block(), next, test_leader()),
                next,
                next * 10,
                state.commitment(),
                Vec::new(),
            );
            state.apply(&block);
        }
        state
    }

    #[test]
    fn the_store_keeps_the_newest_two_and_reopens_at_the_newest_whole_one() {
        deterministic::Runner::default().start(|context| async move {
            let partition = "snapshots".to_string();
            let (mut store, restored) = Snapshots::open(context.child("store"), partition.clone()).await.unwrap();
            assert!(restored.is_none());
            for height in [4, 8, 12] {
                store.write(height, state_at(height).snapshot()).await.unwrap();
            }
            assert_eq!(store.latest().map(|latest| latest.height), Some(12));
            // The one before stays for peers fetching it; the oldest is gone.
            assert!(store.read_chunk(8, 0).await.is_some());
            assert!(store.read_chunk(4, 0).await.is_none());
            assert_eq!(store.read_chunk(12, 0).await.unwrap(), state_at(12).snapshot());
            assert!(store.read_chunk(12, 1).await.is_none());
            drop(store);

            let (store, restored) = Snapshots::open(context.child("store"), partition.clone()).await.unwrap();
            assert_eq!(restored.unwrap().state_digest(), state_at(12).state_digest());
            assert!(store.read_chunk(8, 0).await.is_some());
            drop(store);

            // A torn newest snapshot (a crash mid-write) is removed; the one before is used.
            let (blob, length) = context.open(&partition, &name(12)).await.unwrap();
            blob.resize(length / 2).await.unwrap();
            blob.sync().await.unwrap();
            drop(blob);
            let (store, restored) = Snapshots::open(context, partition).await.unwrap();
            assert_eq!(restored.unwrap().height(), 8);
            assert_eq!(store.latest().map(|latest| latest.height), Some(8));
        });
    }

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let messages = [
            SnapshotMessage::AskOffer,
            SnapshotMessage::none(),
            SnapshotMessage::Offer { height: 512, length: 9_000, above: bytes::Bytes::from_static(b"proof") },
            SnapshotMessage::AskChunk { height: 512, index: 3 },
            SnapshotMessage::Chunk { height: 512, index: 3, bytes: bytes::Bytes::from_static(b"part") },
            SnapshotMessage::AskRecord { height: 77, index: 1 },
            SnapshotMessage::RecordChunk { height: 77, index: 1, length: 9, bytes: bytes::Bytes::from_static(b"part") },
            SnapshotMessage::AskChunkHashes { height: 512 },
            SnapshotMessage::ChunkHashes {
                height: 512,
                list: HashList { length: SNAPSHOT_CHUNK_SIZE as u64 + 1, hashes: vec![[1; 32], [2; 32]] },
            },
        ];
        for message in messages {
            assert_eq!(SnapshotMessage::decode(message.encode()), Some(message.clone()));
            let mut longer = message.encode().to_vec();
            let trailing_allowed =
                matches!(message, SnapshotMessage::Chunk { .. } | SnapshotMessage::RecordChunk { .. })
                    || matches!(message, SnapshotMessage::Offer { height, .. } if height > 0);
            if !trailing_allowed {
                longer.push(0);
                assert_eq!(SnapshotMessage::decode(longer.into()), None);
            }
        }
        assert_eq!(SnapshotMessage::decode(bytes::Bytes::new()), None);
        assert_eq!(SnapshotMessage::decode(bytes::Bytes::from_static(&[9])), None);
        assert_eq!(SnapshotMessage::decode(bytes::Bytes::from_static(&[2, 0, 0])), None);
        let oversized =
            SnapshotMessage::Chunk { height: 1, index: 0, bytes: bytes::Bytes::from(vec![0; SNAPSHOT_CHUNK_SIZE + 1]) };
        assert_eq!(SnapshotMessage::decode(oversized.encode()), None);
        let oversized = SnapshotMessage::RecordChunk {
            height: 1,
            index: 0,
            length: 1,
            bytes: bytes::Bytes::from(vec![0; REPAIR_CHUNK_SIZE + 1]),
        };
        assert_eq!(SnapshotMessage::decode(oversized.encode()), None);

        // A chunk-hash list with a hash too many or too few, of nothing, or of a snapshot larger
        // than this validator takes, is refused.
        let list = |length: u64, count: usize| {
            let mut bytes = vec![8];
            bytes.extend_from_slice(&512u64.to_be_bytes());
            bytes.extend_from_slice(&length.to_be_bytes());
            bytes.extend(std::iter::repeat_n(7u8, count * 32));
            bytes::Bytes::from(bytes)
        };
        assert!(SnapshotMessage::decode(list(SNAPSHOT_CHUNK_SIZE as u64 * 3, 3)).is_some());
        for (length, count) in [
            (SNAPSHOT_CHUNK_SIZE as u64 * 3, 2),
            (SNAPSHOT_CHUNK_SIZE as u64 * 3, 4),
            (0, 0),
            (SNAPSHOT_SIZE_MAX + 1, CHUNK_HASHES_MAX as usize + 1),
        ] {
            assert_eq!(SnapshotMessage::decode(list(length, count)), None, "{length} bytes in {count} chunks");
        }
        let mut short = list(10, 1).to_vec();
        short.pop();
        assert_eq!(SnapshotMessage::decode(short.into()), None);
    }

    #[test]
    fn the_store_serves_the_hash_of_each_chunk() {
        deterministic::Runner::default().start(|context| async move {
            let (mut store, _) = Snapshots::open(context.child("store"), "snapshots".into()).await.unwrap();
            let bytes = state_at(3).snapshot();
            store.write(3, bytes.clone()).await.unwrap();
            let list = store.chunk_hashes(3).await.unwrap();
            assert_eq!(list, HashList::of(&bytes));
            assert!(list.is_well_formed());
            assert_eq!(store.chunk_hashes(3).await, Some(list), "kept");
            assert_eq!(store.chunk_hashes(4).await, None);
        });
    }
}
