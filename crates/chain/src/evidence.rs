//! Evidence of misbehaviour: two votes one validator signed in one view that no honest
//! validator signs together. Simplex reports three kinds, and each proves on its own, to anyone
//! holding the genesis, that the validator named broke the protocol:
//! - **conflicting notarize**: notarizes of two different proposals;
//! - **conflicting finalize**: finalizes of two different proposals;
//! - **nullify-finalize**: a nullify (skip the view) and a finalize (commit to its proposal).
//!
//! A validator keeps what it is shown (`application/evidence.rs`), checked again here against
//! the genesis validators before it is kept: Simplex reports a conflict as soon as the second
//! vote arrives, before it verified that vote's signature, and a piece a third party is to
//! believe must stand on its own.
//!
//! Encoding. A piece is Simplex's own encoding of the activity: a tag (7 conflicting notarize,
//! 8 conflicting finalize, 9 nullify-finalize) followed by the two votes, each with its round
//! (epoch and view), for a notarize or finalize its proposal (parent view and block digest),
//! the signer's index among the sorted genesis validators, and its ed25519 signature over the
//! chain's consensus namespace. `GET /v1/evidence` serves these bytes as hex and
//! `tally evidence verify` checks them.
//!
//! The evidence file (`validator-evidence` in the data directory, one blob named `pieces`) is a
//! sequence of records: the piece's length (2 bytes, big-endian, 1 to `EVIDENCE_SIZE_MAX`), the
//! piece, and the first 8 bytes of the SHA-256 of the length and the piece. Records are only
//! appended, and the file is rewritten only to drop damage it was found with.

use crate::BlockDigest;
use crate::block::hash;
use crate::consensus::{Activity, Scheme, certificate_verifier};
use crate::constants::{EVIDENCE_KEPT_MAX, EVIDENCE_RECORD_SIZE_MAX, EVIDENCE_SIZE_MAX};
use crate::genesis::Genesis;
use crate::keys::{ValidatorKey, ValidatorSigner};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::Viewable as _;
use commonware_consensus::simplex::types::{
    Attributable as _, ConflictingFinalize, ConflictingNotarize, Finalize, Notarize, Nullify, NullifyFinalize, Proposal,
};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_utils::ordered::Set;
use std::collections::BTreeSet;

/// What a piece of evidence proves a validator signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EvidenceKind {
    ConflictingNotarize,
    ConflictingFinalize,
    NullifyFinalize,
}

impl EvidenceKind {
    /// The name the API and the CLI use.
    pub fn name(self) -> &'static str {
        match self {
            Self::ConflictingNotarize => "conflicting_notarize",
            Self::ConflictingFinalize => "conflicting_finalize",
            Self::NullifyFinalize => "nullify_finalize",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::ConflictingNotarize, Self::ConflictingFinalize, Self::NullifyFinalize]
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// What the validator did, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ConflictingNotarize => "notarized two different blocks",
            Self::ConflictingFinalize => "finalized two different blocks",
            Self::NullifyFinalize => "voted both to skip and to finalize",
        }
    }
}

/// Why a piece of evidence does not prove anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence of {bytes} bytes is longer than the limit of {max} bytes")]
    TooLong { bytes: usize, max: usize },
    #[error("evidence is malformed: {0}")]
    Malformed(String),
    #[error("the activity is a vote or a certificate, not evidence of misbehaviour")]
    NotEvidence,
    #[error("evidence names signer {signer}, but the genesis has {validators} validators")]
    UnknownSigner { signer: u32, validators: usize },
    #[error("evidence signatures do not verify against the genesis validators")]
    BadSignatures,
}

/// One piece of evidence: Simplex's activity, always one of the three evidence kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence(Activity);

impl Evidence {
    /// The evidence in a Simplex activity, if it is evidence (its signatures are not checked:
    /// see `verify`).
    pub fn from_activity(activity: Activity) -> Option<Self> {
        match activity {
            Activity::ConflictingNotarize(_) | Activity::ConflictingFinalize(_) | Activity::NullifyFinalize(_) => {
                Some(Self(activity))
            }
            _ => None,
        }
    }

    pub fn kind(&self) -> EvidenceKind {
        match &self.0 {
            Activity::ConflictingNotarize(_) => EvidenceKind::ConflictingNotarize,
            Activity::ConflictingFinalize(_) => EvidenceKind::ConflictingFinalize,
            Activity::NullifyFinalize(_) => EvidenceKind::NullifyFinalize,
            _ => unreachable!("an Evidence holds only evidence activities"),
        }
    }

    /// The view both votes are in.
    pub fn view(&self) -> u64 {
        self.0.view().get()
    }

    /// The index, among the sorted genesis validators, of the validator who signed both votes.
    pub fn signer(&self) -> u32 {
        match &self.0 {
            Activity::ConflictingNotarize(evidence) => evidence.signer().get(),
            Activity::ConflictingFinalize(evidence) => evidence.signer().get(),
            Activity::NullifyFinalize(evidence) => evidence.signer().get(),
            _ => unreachable!("an Evidence holds only evidence activities"),
        }
    }

    /// The accused validator's key, if `genesis` has a validator at the signer's index.
    pub fn accused(&self, genesis: &Genesis) -> Option<ValidatorKey> {
        let participants = Set::try_from(genesis.validators().to_vec()).expect("genesis validators are unique");
        participants.get(self.signer() as usize).cloned()
    }

    /// Checks both signatures against `genesis`'s validators and chain: `Ok` proves the accused
    /// validator signed both votes.
    pub fn verify(&self, genesis: &Genesis) -> Result<ValidatorKey, EvidenceError> {
        let accused = self
            .accused(genesis)
            .ok_or(EvidenceError::UnknownSigner { signer: self.signer(), validators: genesis.validators().len() })?;
        let mut rng = commonware_utils::sys_rng();
        if !self.0.verify(&mut rng, &certificate_verifier(genesis), &commonware_parallel::Sequential) {
            return Err(EvidenceError::BadSignatures);
        }
        Ok(accused)
    }

    /// The bytes a third party checks (see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let bytes = self.0.encode().to_vec();
        assert!(bytes.len() <= EVIDENCE_SIZE_MAX, "a piece of evidence is {} bytes", bytes.len());
        bytes
    }

    /// Decodes bytes from `encode`: well formed (two votes of one signer in one round that
    /// conflict), not checked against a genesis (see `verify`).
    pub fn decode(bytes: &[u8]) -> Result<Self, EvidenceError> {
        if bytes.len() > EVIDENCE_SIZE_MAX {
            return Err(EvidenceError::TooLong { bytes: bytes.len(), max: EVIDENCE_SIZE_MAX });
        }
        // Evidence holds votes only; the certificate config is never used. A certificate tag
        // would need one: refuse those tags before decoding.
        if !matches!(bytes.first(), Some(7..=9)) {
            return match bytes.first() {
                None => Err(EvidenceError::Malformed("no bytes".into())),
                Some(0..=6) => Err(EvidenceError::NotEvidence),
                Some(tag) => Err(EvidenceError::Malformed(format!("unknown activity tag {tag}"))),
            };
        }
        let votes = bytes::Bytes::copy_from_slice(&bytes[1..]);
        let activity = match bytes[0] {
            7 => ConflictingNotarize::<Scheme, BlockDigest>::decode(votes).map(Activity::ConflictingNotarize),
            8 => ConflictingFinalize::<Scheme, BlockDigest>::decode(votes).map(Activity::ConflictingFinalize),
            _ => NullifyFinalize::<Scheme, BlockDigest>::decode(votes).map(Activity::NullifyFinalize),
        }
        .map_err(|error| EvidenceError::Malformed(error.to_string()))?;
        Ok(Self(activity))
    }
}

/// The record of `evidence` in the evidence file (see the module doc).
pub fn record(evidence: &Evidence) -> Vec<u8> {
    let piece = evidence.encode();
    let mut record = Vec::with_capacity(2 + piece.len() + 8);
    record.extend_from_slice(&u16::try_from(piece.len()).expect("at most EVIDENCE_SIZE_MAX").to_be_bytes());
    record.extend_from_slice(&piece);
    let check = hash(&record);
    record.extend_from_slice(&check.as_ref()[..8]);
    debug_assert!(record.len() <= EVIDENCE_RECORD_SIZE_MAX);
    record
}

/// What reading the evidence file found besides the pieces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileDamage {
    /// Records whose checksum failed, that did not decode, or that did not verify, by offset.
    pub skipped: Vec<(u64, String)>,
    /// Bytes at the end that could not be read as records (a torn write, or a damaged length),
    /// and where they start.
    pub dropped: Option<(u64, u64)>,
}

impl FileDamage {
    pub fn is_empty(&self) -> bool {
        self.skipped.is_empty() && self.dropped.is_none()
    }
}

/// Reads the evidence file: every record that is intact and verifies against `genesis`, and
/// what was wrong with the rest. Never panics on bad bytes.
pub fn read_file(bytes: &[u8], genesis: &Genesis) -> (Vec<Evidence>, FileDamage) {
    let mut pieces = Vec::new();
    let mut damage = FileDamage::default();
    let mut kept = BTreeSet::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let length = match rest {
            [high, low, ..] => u16::from_be_bytes([*high, *low]) as usize,
            _ => 0,
        };
        // A length out of bounds leaves no way to find the next record.
        if length == 0 || length > EVIDENCE_SIZE_MAX || rest.len() < 2 + length + 8 {
            damage.dropped = Some((offset as u64, rest.len() as u64));
            break;
        }
        let (body, check) = rest[..2 + length + 8].split_at(2 + length);
        let at = offset as u64;
        offset += 2 + length + 8;
        if hash(body).as_ref()[..8] != *check {
            damage.skipped.push((at, "checksum does not match".into()));
            continue;
        }
        match Evidence::decode(&body[2..]).and_then(|evidence| evidence.verify(genesis).map(|_| evidence)) {
            Ok(evidence) if pieces.len() < EVIDENCE_KEPT_MAX => {
                if kept.insert(evidence.encode()) {
                    pieces.push(evidence);
                }
            }
            Ok(_) => damage.skipped.push((at, format!("more than {EVIDENCE_KEPT_MAX} pieces"))),
            Err(error) => damage.skipped.push((at, error.to_string())),
        }
    }
    (pieces, damage)
}

/// What became of a piece shown to [`EvidenceKept::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// Verified and new: keep it (write its record), accusing this validator.
    New(ValidatorKey),
    /// Already kept.
    Duplicate,
    /// Verified, but `EVIDENCE_KEPT_MAX` pieces are kept already.
    Full(ValidatorKey),
    /// Does not verify against the genesis: proves nothing.
    Refused(EvidenceError),
}

/// The pieces a validator keeps, at most `EVIDENCE_KEPT_MAX`, each verified and distinct.
#[derive(Debug, Clone, Default)]
pub struct EvidenceKept {
    pieces: Vec<Evidence>,
    encodings: BTreeSet<Vec<u8>>,
}

impl EvidenceKept {
    /// Kept pieces read back from the evidence file (`read_file` verified them).
    pub fn restore(pieces: Vec<Evidence>) -> Self {
        assert!(pieces.len() <= EVIDENCE_KEPT_MAX, "read_file keeps at most EVIDENCE_KEPT_MAX pieces");
        let encodings: BTreeSet<Vec<u8>> = pieces.iter().map(Evidence::encode).collect();
        assert_eq!(encodings.len(), pieces.len(), "read_file keeps distinct pieces");
        Self { pieces, encodings }
    }

    /// Judges a reported piece: verified against `genesis`, new, and room to keep it. A `New`
    /// piece is kept in memory; the caller writes its record.
    pub fn admit(&mut self, evidence: Evidence, genesis: &Genesis) -> Admitted {
        let encoding = evidence.encode();
        if self.encodings.contains(&encoding) {
            return Admitted::Duplicate;
        }
        let accused = match evidence.verify(genesis) {
            Ok(accused) => accused,
            Err(error) => return Admitted::Refused(error),
        };
        if self.pieces.len() >= EVIDENCE_KEPT_MAX {
            return Admitted::Full(accused);
        }
        self.encodings.insert(encoding);
        self.pieces.push(evidence);
        assert!(self.pieces.len() <= EVIDENCE_KEPT_MAX && self.pieces.len() == self.encodings.len());
        Admitted::New(accused)
    }

    /// The kept pieces, oldest first.
    pub fn pieces(&self) -> &[Evidence] {
        &self.pieces
    }
}

/// Evidence that `signer` (a validator of `genesis`) notarized two different blocks in `view`,
/// as a twin would sign it: for tests.
pub fn sign_conflicting_notarize(genesis: &Genesis, signer: &ValidatorSigner, view: u64) -> Evidence {
    let scheme = crate::consensus::signing_scheme(genesis, signer.clone()).expect("a genesis validator");
    let round = Round::new(Epoch::new(0), View::new(view));
    let proposal = |byte: u8| Proposal::new(round, View::new(view - 1), hash(&[byte]));
    let first = Notarize::sign(&scheme, proposal(1)).expect("a notarize signs");
    let second = Notarize::sign(&scheme, proposal(2)).expect("a notarize signs");
    Evidence(Activity::ConflictingNotarize(ConflictingNotarize::new(first, second)))
}

/// Evidence that `signer` voted to skip `view` and finalized a block in it: for tests.
pub fn sign_nullify_finalize(genesis: &Genesis, signer: &ValidatorSigner, view: u64) -> Evidence {
    let scheme = crate::consensus::signing_scheme(genesis, signer.clone()).expect("a genesis validator");
    let round = Round::new(Epoch::new(0), View::new(view));
    let nullify = Nullify::sign::<BlockDigest>(&scheme, round).expect("a nullify signs");
    let finalize =
        Finalize::sign(&scheme, Proposal::new(round, View::new(view - 1), hash(&[3]))).expect("a finalize signs");
    Evidence(Activity::NullifyFinalize(NullifyFinalize::new(nullify, finalize)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{public_key, signer_from_seed};

    fn fixture(chain_id: u64) -> (Genesis, Vec<ValidatorSigner>) {
        let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
        let validators = signers.iter().map(public_key).collect();
        (Genesis::new(chain_id, validators, vec![public_key(&signer_from_seed(9))], 0).unwrap(), signers)
    }

    #[test]
    fn evidence_round_trips_and_names_the_signer() {
        let (genesis, signers) = fixture(1);
        for (evidence, kind) in [
            (sign_conflicting_notarize(&genesis, &signers[2], 7), EvidenceKind::ConflictingNotarize),
            (sign_nullify_finalize(&genesis, &signers[2], 7), EvidenceKind::NullifyFinalize),
        ] {
            assert_eq!(evidence.kind(), kind);
            assert_eq!(EvidenceKind::from_name(kind.name()), Some(kind));
            assert_eq!(evidence.view(), 7);
            assert_eq!(evidence.verify(&genesis), Ok(public_key(&signers[2])));
            let decoded = Evidence::decode(&evidence.encode()).unwrap();
            assert_eq!(decoded, evidence);
            assert!(evidence.encode().len() <= EVIDENCE_SIZE_MAX);
        }
    }

    #[test]
    fn evidence_from_another_chain_or_tampered_does_not_verify() {
        let (genesis, signers) = fixture(1);
        let (other, _) = fixture(2);
        let evidence = sign_conflicting_notarize(&genesis, &signers[0], 3);
        assert_eq!(evidence.verify(&other), Err(EvidenceError::BadSignatures));
        let bytes = evidence.encode();
        for index in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[index] ^= 0x01;
            if let Ok(decoded) = Evidence::decode(&tampered) {
                assert!(decoded.verify(&genesis).is_err(), "a flip of byte {index} still verifies");
            }
        }
        assert_eq!(Evidence::decode(&[]), Err(EvidenceError::Malformed("no bytes".into())));
        assert_eq!(Evidence::decode(&[0; 40]), Err(EvidenceError::NotEvidence));
        assert!(matches!(Evidence::decode(&[7; 600]), Err(EvidenceError::TooLong { .. })));
    }

    #[test]
    fn kept_evidence_is_verified_distinct_and_bounded() {
        let (genesis, signers) = fixture(1);
        let (other, other_signers) = fixture(2);
        let mut kept = EvidenceKept::default();
        let piece = sign_conflicting_notarize(&genesis, &signers[1], 5);
        assert_eq!(kept.admit(piece.clone(), &genesis), Admitted::New(public_key(&signers[1])));
        assert_eq!(kept.admit(piece, &genesis), Admitted::Duplicate);
        let foreign = sign_conflicting_notarize(&other, &other_signers[1], 5);
        assert_eq!(kept.admit(foreign, &genesis), Admitted::Refused(EvidenceError::BadSignatures));
        for view in 6..(6 + EVIDENCE_KEPT_MAX as u64 - 1) {
            assert!(matches!(
                kept.admit(sign_conflicting_notarize(&genesis, &signers[1], view), &genesis),
                Admitted::New(_)
            ));
        }
        assert_eq!(kept.pieces().len(), EVIDENCE_KEPT_MAX);
        let late = sign_conflicting_notarize(&genesis, &signers[3], 1);
        assert_eq!(kept.admit(late, &genesis), Admitted::Full(public_key(&signers[3])));
    }

    #[test]
    fn the_file_keeps_what_verifies_and_reports_damage() {
        let (genesis, signers) = fixture(1);
        let pieces: Vec<Evidence> =
            (1..=3).map(|view| sign_conflicting_notarize(&genesis, &signers[0], view)).collect();
        let records: Vec<Vec<u8>> = pieces.iter().map(record).collect();
        let file: Vec<u8> = records.concat();
        assert_eq!(read_file(&file, &genesis), (pieces.clone(), FileDamage::default()));

        // A flipped byte inside the second piece: skipped, the others kept.
        let mut damaged = file.clone();
        damaged[records[0].len() + 40] ^= 0x80;
        let (read, damage) = read_file(&damaged, &genesis);
        assert_eq!(read, vec![pieces[0].clone(), pieces[2].clone()]);
        assert_eq!(damage.skipped.len(), 1);
        assert_eq!(damage.skipped[0].0, records[0].len() as u64);
        assert_eq!(damage.dropped, None);

        // A torn last record: dropped from where it starts.
        let torn = &file[..file.len() - 5];
        let (read, damage) = read_file(torn, &genesis);
        assert_eq!(read, pieces[..2].to_vec());
        let start = (records[0].len() + records[1].len()) as u64;
        assert_eq!(damage.dropped, Some((start, records[2].len() as u64 - 5)));

        // A damaged length: nothing after it can be found.
        let mut bad_length = file.clone();
        bad_length[records[0].len()] = 0xff;
        let (read, damage) = read_file(&bad_length, &genesis);
        assert_eq!(read, pieces[..1].to_vec());
        assert!(damage.dropped.is_some());

        // A record with a good checksum from another chain proves nothing here.
        let (other, other_signers) = fixture(2);
        let foreign = record(&sign_conflicting_notarize(&other, &other_signers[0], 9));
        let (read, damage) = read_file(&[file.clone(), foreign].concat(), &genesis);
        assert_eq!(read, pieces);
        assert_eq!(damage.skipped.len(), 1);

        // Garbage never panics.
        for length in 0..64 {
            let _ = read_file(&vec![0xa5; length], &genesis);
        }
    }
}
