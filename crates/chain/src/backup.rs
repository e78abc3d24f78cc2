//! The backup file: a validator's snapshot with the certified header that proves it, checkable
//! offline by anyone who holds the genesis (`GET /v1/backup` writes it, `tally backup` saves it,
//! `tally backup verify` and `tally restore` check it).
//!
//! The format (integers big-endian, as on the wire; `docs/API.md` documents every byte):
//!
//! ```text
//! magic "TALLYBAK" | version u32 (1) | chain id u64 | height u64 | length u64
//! chunk size u32 (SNAPSHOT_CHUNK_SIZE) | chunk count u32 | chunk count × SHA-256 [32]
//! proof length u32 | certified header of the block at height + 1 (`certified.rs`)
//! the snapshot's bytes (`snapshot.rs`), length bytes, chunk after chunk
//! ```
//!
//! Every byte is checked by something that does not trust whoever wrote the file: each chunk
//! against its hash as it is read, the certified header against the genesis validators' signatures,
//! and the whole snapshot's state digest against that header (the same check a validator makes
//! of a peer's snapshot, `snapshot::check_snapshot_state`). The hashes let a reader refuse a
//! damaged chunk early; the certified header is what proves the state.

use crate::application::snapshot_fetch::{ChunkHash, HashList, chunk_count, chunk_hash};
use crate::application::snapshots::{SNAPSHOT_CHUNK_SIZE, SNAPSHOT_SIZE_MAX};
use bytes::BufMut as _;
use std::io::Read;

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"TALLYBAK";

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// The most bytes of the certified header in a backup (as in a peer's snapshot offer).
pub const PROOF_SIZE_MAX: u32 = 64 * 1024;

/// Bytes before the chunk hashes: magic, version, chain id, height, length, chunk size, count.
pub const FIXED_SIZE: usize = 8 + 4 + 8 + 8 + 8 + 4 + 4;

/// Why a backup file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a Tally backup (it does not start with TALLYBAK)")]
    BadMagic,
    #[error("backup format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    #[error("the backup is truncated: it ends within {0}")]
    Truncated(String),
    #[error("the backup is malformed: {0}")]
    Malformed(String),
    #[error("chunk {index} of the snapshot does not match its hash")]
    ChunkMismatch { index: u32 },
    #[error("the backup has bytes after the snapshot's last chunk")]
    TrailingBytes,
    #[error("reading the backup: {0}")]
    Io(#[from] std::io::Error),
}

/// What a backup file says before its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupHeader {
    pub chain_id: u64,
    /// The snapshot's height.
    pub height: u64,
    /// The snapshot's length and the SHA-256 of each of its chunks.
    pub list: HashList,
    /// The certified header of the block at `height + 1`, encoded (`CertifiedHeader::decode`
    /// needs the genesis to read it).
    pub proof: Vec<u8>,
}

impl BackupHeader {
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.list.is_well_formed(), "a snapshot this validator holds");
        let proof_length = u32::try_from(self.proof.len()).expect("a certified header is small");
        assert!(proof_length <= PROOF_SIZE_MAX);
        let mut bytes = Vec::with_capacity(FIXED_SIZE + self.list.hashes.len() * 32 + 4 + self.proof.len());
        bytes.put_slice(MAGIC);
        bytes.put_u32(VERSION);
        bytes.put_u64(self.chain_id);
        bytes.put_u64(self.height);
        bytes.put_u64(self.list.length);
        bytes.put_u32(SNAPSHOT_CHUNK_SIZE as u32);
        bytes.put_u32(u32::try_from(self.list.hashes.len()).expect("at most CHUNK_HASHES_MAX"));
        for hash in &self.list.hashes {
            bytes.put_slice(hash);
        }
        bytes.put_u32(proof_length);
        bytes.put_slice(&self.proof);
        bytes
    }

    /// Reads the header from the start of a backup, checking every bound before it allocates.
    pub fn read(reader: &mut impl Read) -> Result<Self, BackupError> {
        let mut magic = [0; 8];
        read_exact(reader, &mut magic, "the magic")?;
        if &magic != MAGIC {
            return Err(BackupError::BadMagic);
        }
        let version = read_u32(reader, "the version")?;
        if version != VERSION {
            return Err(BackupError::UnsupportedVersion(version));
        }
        let chain_id = read_u64(reader, "the chain id")?;
        let height = read_u64(reader, "the height")?;
        let length = read_u64(reader, "the snapshot length")?;
        if length == 0 || length > SNAPSHOT_SIZE_MAX {
            return Err(BackupError::Malformed(format!(
                "a snapshot of {length} bytes (1 to {SNAPSHOT_SIZE_MAX} are read)"
            )));
        }
        let chunk_size = read_u32(reader, "the chunk size")?;
        if chunk_size as usize != SNAPSHOT_CHUNK_SIZE {
            return Err(BackupError::Malformed(format!(
                "chunks of {chunk_size} bytes (this build reads chunks of {SNAPSHOT_CHUNK_SIZE})"
            )));
        }
        let count = read_u32(reader, "the chunk count")?;
        if u64::from(count) != chunk_count(length) {
            return Err(BackupError::Malformed(format!(
                "{count} chunk hashes for a snapshot of {length} bytes ({} chunks)",
                chunk_count(length)
            )));
        }
        let mut hashes: Vec<ChunkHash> = Vec::with_capacity(count as usize);
        for index in 0..count {
            let mut hash = [0; 32];
            read_exact(reader, &mut hash, &format!("the hash of chunk {index}"))?;
            hashes.push(hash);
        }
        let proof_length = read_u32(reader, "the proof length")?;
        if proof_length == 0 || proof_length > PROOF_SIZE_MAX {
            return Err(BackupError::Malformed(format!(
                "a certified header of {proof_length} bytes (1 to {PROOF_SIZE_MAX} are read)"
            )));
        }
        let mut proof = vec![0; proof_length as usize];
        read_exact(reader, &mut proof, "the certified header")?;
        let list = HashList { length, hashes };
        assert!(list.is_well_formed());
        Ok(Self { chain_id, height, list, proof })
    }

    /// The length of chunk `index`.
    pub fn chunk_length(&self, index: u32) -> usize {
        let offset = u64::from(index) * SNAPSHOT_CHUNK_SIZE as u64;
        assert!(offset < self.list.length, "chunk {index} is within the snapshot");
        (self.list.length - offset).min(SNAPSHOT_CHUNK_SIZE as u64) as usize
    }

    /// How many chunks follow the header.
    pub fn chunk_count(&self) -> u32 {
        self.list.hashes.len() as u32
    }

    /// Checks chunk `index` against its hash.
    pub fn check_chunk(&self, index: u32, bytes: &[u8]) -> Result<(), BackupError> {
        let expected = self.list.hashes.get(index as usize).ok_or(BackupError::ChunkMismatch { index })?;
        if bytes.len() != self.chunk_length(index) || chunk_hash(bytes) != *expected {
            return Err(BackupError::ChunkMismatch { index });
        }
        Ok(())
    }

    /// Reads chunk `index` (the next one) and checks it against its hash.
    pub fn read_chunk(&self, reader: &mut impl Read, index: u32) -> Result<Vec<u8>, BackupError> {
        let mut bytes = vec![0; self.chunk_length(index)];
        read_exact(reader, &mut bytes, &format!("chunk {index} of {}", self.chunk_count()))?;
        self.check_chunk(index, &bytes)?;
        Ok(bytes)
    }

    /// Reads every chunk, checking each as it comes, and then that nothing follows: the whole
    /// snapshot (it is restored in memory to check its state digest, as a fetched one is).
    pub fn read_snapshot(&self, reader: &mut impl Read) -> Result<Vec<u8>, BackupError> {
        let length = usize::try_from(self.list.length).map_err(|_| BackupError::Malformed("too long".into()))?;
        let mut snapshot = Vec::with_capacity(length);
        for index in 0..self.chunk_count() {
            snapshot.extend_from_slice(&self.read_chunk(reader, index)?);
        }
        let mut more = [0; 1];
        loop {
            match reader.read(&mut more) {
                Ok(0) => return Ok(snapshot),
                Ok(_) => return Err(BackupError::TrailingBytes),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

fn read_exact(reader: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), BackupError> {
    reader.read_exact(buf).map_err(|error| match error.kind() {
        std::io::ErrorKind::UnexpectedEof => BackupError::Truncated(what.to_string()),
        _ => BackupError::Io(error),
    })
}

fn read_u32(reader: &mut impl Read, what: &str) -> Result<u32, BackupError> {
    let mut bytes = [0; 4];
    read_exact(reader, &mut bytes, what)?;
    Ok(u32::from_be_bytes(bytes))
}

fn read_u64(reader: &mut impl Read, what: &str) -> Result<u64, BackupError> {
    let mut bytes = [0; 8];
    read_exact(reader, &mut bytes, what)?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(snapshot: &[u8]) -> (BackupHeader, Vec<u8>) {
        let header = BackupHeader { chain_id: 7, height: 512, list: HashList::of(snapshot), proof: b"proof".to_vec() };
        let mut file = header.encode();
        file.extend_from_slice(snapshot);
        (header, file)
    }

    #[test]
    fn a_backup_reads_back_and_every_chunk_is_checked() {
        let snapshot: Vec<u8> = (0..SNAPSHOT_CHUNK_SIZE * 2 + 10).map(|index| index as u8).collect();
        let (header, file) = backup(&snapshot);
        let mut reader = file.as_slice();
        let read = BackupHeader::read(&mut reader).unwrap();
        assert_eq!(read, header);
        assert_eq!(read.chunk_count(), 3);
        assert_eq!(read.read_snapshot(&mut reader).unwrap(), snapshot);

        // A flipped byte in any chunk, or in a hash, fails that chunk.
        for at in [file.len() - 1, file.len() - snapshot.len(), FIXED_SIZE + 32] {
            let mut flipped = file.clone();
            flipped[at] ^= 1;
            let mut reader = flipped.as_slice();
            let header = BackupHeader::read(&mut reader).unwrap();
            assert!(matches!(header.read_snapshot(&mut reader), Err(BackupError::ChunkMismatch { .. })), "{at}");
        }
        // Cut anywhere, it says where it ends.
        for cut in [0, 5, 20, FIXED_SIZE + 3, file.len() - snapshot.len() - 1, file.len() - 1] {
            let mut reader = &file[..cut];
            let result = BackupHeader::read(&mut reader).and_then(|header| header.read_snapshot(&mut reader));
            assert!(matches!(result, Err(BackupError::Truncated(_))), "cut at {cut}: {result:?}");
        }
        let mut longer = file.clone();
        longer.push(0);
        let mut reader = longer.as_slice();
        let header = BackupHeader::read(&mut reader).unwrap();
        assert!(matches!(header.read_snapshot(&mut reader), Err(BackupError::TrailingBytes)));
    }

    #[test]
    fn bad_headers_are_refused_before_allocating() {
        let (_, file) = backup(b"a small snapshot");
        let mut bad = file.clone();
        bad[0] = b'X';
        assert!(matches!(BackupHeader::read(&mut bad.as_slice()), Err(BackupError::BadMagic)));
        let mut bad = file.clone();
        bad[11] = 2;
        assert!(matches!(BackupHeader::read(&mut bad.as_slice()), Err(BackupError::UnsupportedVersion(2))));
        // A length beyond the largest snapshot, and a count that does not fit the length.
        let mut bad = file.clone();
        bad[28..36].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(BackupHeader::read(&mut bad.as_slice()), Err(BackupError::Malformed(_))));
        let mut bad = file.clone();
        bad[40..44].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(BackupHeader::read(&mut bad.as_slice()), Err(BackupError::Malformed(_))));
        let mut bad = file;
        bad[FIXED_SIZE + 32..FIXED_SIZE + 36].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(BackupHeader::read(&mut bad.as_slice()), Err(BackupError::Malformed(_))));
    }
}
