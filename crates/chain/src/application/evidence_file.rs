//! The evidence file on disk: partition `{partition}-evidence` (`validator-evidence` in a
//! validator's data directory), one blob named `pieces` holding the records `evidence.rs`
//! describes. Every kept piece is appended and synced before it is counted or served, so what
//! the API showed survives a restart.
//!
//! Damage is never fatal: a record whose checksum fails, or that no longer verifies, is skipped
//! with a warning, and bytes that cannot be read as records (a torn write, a damaged length) are
//! dropped with a warning; the file is then rewritten with the pieces that verify, so that new
//! records follow good ones. A failed write or sync is a storage failure like any other, and
//! halts the validator (fail-stop).

use crate::error::ChainError;
use crate::evidence::{Evidence, read_file, record};
use crate::genesis::Genesis;
use commonware_runtime::{Blob as _, ReadOptions, Storage, WriteOptions};
use tracing::{info, warn};

/// The one blob of the partition.
const BLOB: &[u8] = b"pieces";

fn storage_error(error: impl std::fmt::Display) -> ChainError {
    ChainError::Storage(format!("evidence file: {error}"))
}

pub struct EvidenceFile<E: Storage> {
    blob: E::Blob,
    partition: String,
    /// Where the next record goes.
    end: u64,
}

impl<E: Storage> std::fmt::Debug for EvidenceFile<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceFile").field("partition", &self.partition).field("end", &self.end).finish()
    }
}

impl<E: Storage> EvidenceFile<E> {
    /// Opens the file and reads back the pieces that verify against `genesis`.
    pub async fn open(context: &E, partition: String, genesis: &Genesis) -> Result<(Self, Vec<Evidence>), ChainError> {
        let (blob, length) = context.open(&partition, BLOB).await.map_err(storage_error)?;
        let bytes = if length == 0 {
            Vec::new()
        } else {
            let length = usize::try_from(length).map_err(storage_error)?;
            blob.read_at(0, length, ReadOptions::default()).await.map_err(storage_error)?.coalesce().as_ref().to_vec()
        };
        let (pieces, damage) = read_file(&bytes, genesis);
        let mut file = Self { blob, partition, end: bytes.len() as u64 };
        if !damage.is_empty() {
            for (offset, why) in &damage.skipped {
                warn!(partition = file.partition, offset, %why, "skipping a damaged piece of the evidence file");
            }
            if let Some((offset, bytes)) = damage.dropped {
                warn!(
                    partition = file.partition,
                    offset, bytes, "dropping the end of the evidence file: it cannot be read as pieces of evidence"
                );
            }
            warn!(
                partition = file.partition,
                kept = pieces.len(),
                "the evidence file was damaged; it is rewritten with the pieces that verify (the others are lost here, \
                 but the peers that saw the same misbehaviour keep their own copies)"
            );
            let rewritten: Vec<u8> = pieces.iter().flat_map(record).collect();
            let length = rewritten.len() as u64;
            if !rewritten.is_empty() {
                file.blob.write_at(0, rewritten, WriteOptions::default()).await.map_err(storage_error)?;
            }
            file.blob.resize(length).await.map_err(storage_error)?;
            file.blob.sync().await.map_err(storage_error)?;
            file.end = length;
        }
        if !pieces.is_empty() {
            info!(partition = file.partition, pieces = pieces.len(), "evidence of misbehaviour read back");
        }
        Ok((file, pieces))
    }

    /// Appends a piece and syncs it.
    pub async fn append(&mut self, evidence: &Evidence) -> Result<(), ChainError> {
        let record = record(evidence);
        let length = record.len() as u64;
        self.blob.write_at(self.end, record, WriteOptions::default()).await.map_err(storage_error)?;
        self.blob.sync().await.map_err(storage_error)?;
        self.end += length;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sign_conflicting_notarize;
    use crate::keys::{ValidatorSigner, public_key, signer_from_seed};
    use commonware_runtime::{Runner as _, deterministic};

    #[test]
    fn pieces_survive_a_reopen_and_damage_is_dropped_not_fatal() {
        let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
        let genesis =
            Genesis::new(1, signers.iter().map(public_key).collect(), vec![public_key(&signer_from_seed(9))], 0)
                .unwrap();
        deterministic::Runner::default().start(|context| async move {
            let partition = "validator-evidence".to_string();
            let pieces: Vec<Evidence> =
                (1..=3).map(|view| sign_conflicting_notarize(&genesis, &signers[1], view)).collect();
            let (mut file, read) = EvidenceFile::open(&context, partition.clone(), &genesis).await.unwrap();
            assert!(read.is_empty());
            for piece in &pieces {
                file.append(piece).await.unwrap();
            }
            drop(file);
            let (_, read) = EvidenceFile::open(&context, partition.clone(), &genesis).await.unwrap();
            assert_eq!(read, pieces);

            // Damage the second piece's signature and tear a half-written record onto the end.
            let (blob, length) = context.open(&partition, BLOB).await.unwrap();
            let second = record(&pieces[0]).len() as u64;
            blob.write_at(second + 100, vec![0xee], WriteOptions::default()).await.unwrap();
            blob.write_at(length, record(&pieces[0])[..7].to_vec(), WriteOptions::default()).await.unwrap();
            blob.sync().await.unwrap();
            drop(blob);
            let (mut file, read) = EvidenceFile::open(&context, partition.clone(), &genesis).await.unwrap();
            assert_eq!(read, vec![pieces[0].clone(), pieces[2].clone()]);
            // Rewritten: new pieces follow good ones, and the next open finds no damage.
            let fourth = sign_conflicting_notarize(&genesis, &signers[2], 9);
            file.append(&fourth).await.unwrap();
            drop(file);
            let (_, read) = EvidenceFile::open(&context, partition.clone(), &genesis).await.unwrap();
            assert_eq!(read, vec![pieces[0].clone(), pieces[2].clone(), fourth]);
            let (_, length) = context.open(&partition, BLOB).await.unwrap();
            assert_eq!(length, read.iter().map(|piece| record(piece).len() as u64).sum::<u64>());
        });
    }
}
