//! Finalized headers with the certificate that proves them, checkable by anyone who holds the
//! genesis and nothing else.
//!
//! Simplex gives a finalization certificate (a quorum of 2f + 1 validator signatures) for the
//! block of each view it finalizes; a block finalized only as the ancestor of a later one has
//! none of its own. So a `CertifiedHeader` is a header, the headers above it up to the nearest
//! block with a certificate (each naming the one below as its parent), and that certificate.
//! Checking one needs no trust in whoever served it: the chain of parent digests ties the header
//! to the certified block, and the certificate's signatures are checked against the genesis
//! validators under the chain's consensus namespace.
//!
//! Encoding (big-endian): `header (206) | descendant count (2) | descendants (206 each) |
//! finalization` where the finalization is Commonware Simplex's: `epoch (varint) | view (varint)
//! | parent view (varint) | block digest (32) | signers (bitmap) | signatures (64 each)`.

use crate::block::{BlockDigest, Header};
use crate::consensus::Scheme;
use crate::consensus::{Finalization, certificate_verifier};
use crate::constants::BLOCK_HEADER_SIZE;
use crate::genesis::Genesis;
use crate::keys::ValidatorKey;
use crate::keys::ValidatorSigner;
use bytes::{Buf as _, BufMut};
use commonware_codec::{Decode as _, EncodeSize, Error as CodecError, Read, Write};
use commonware_consensus::simplex::types::{Finalize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_consensus::{Epochable as _, Viewable as _};
use commonware_cryptography::certificate::Verifier as _;
use commonware_utils::iter::NonEmpty;
use commonware_utils::ordered::Set;

/// The most headers between a header and the certified block above it that a proof carries.
/// Simplex certifies nearly every view's block, so a longer run (a validator that caught up by
/// fetching blocks holds no certificates for them) is not served: it answers that it cannot
/// prove the height. It also bounds what one unauthenticated read costs a validator.
pub const CERTIFIED_DESCENDANTS_MAX: usize = 32;

/// Why a certified header does not prove its header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("malformed certified header: {0}")]
    Malformed(String),
    #[error("the proof is of height {found}, not the height {expected} asked for")]
    WrongHeight { expected: u64, found: u64 },
    #[error("the header at height {height} does not follow the header below it (parent, height, view, epoch)")]
    BrokenChain { height: u64 },
    #[error("the certificate finalizes block {certified}, not the top of the chain ({top})")]
    WrongBlock { certified: BlockDigest, top: BlockDigest },
    #[error("the certificate's round (epoch {epoch}, view {view}) is not the certified header's")]
    WrongRound { epoch: u64, view: u64 },
    #[error("the certificate's signatures are not a quorum of this chain's validators")]
    BadSignatures,
}

/// A header proven final by a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedHeader {
    pub header: Header,
    /// The headers above `header` up to the certified one, lowest first (empty when `header`
    /// itself is certified).
    pub descendants: Vec<Header>,
    pub finalization: Finalization,
}

impl CertifiedHeader {
    /// The header whose block the certificate finalizes.
    pub fn certified(&self) -> &Header {
        self.descendants.last().unwrap_or(&self.header)
    }

    /// Checks that `header` is the finalized header at `height`: the certificate finalizes the
    /// top of the chain, in its round, with a quorum of the genesis validators' signatures, and
    /// the chain links down to `header`, each header naming the one below as its parent at the
    /// next height, in a later view of the same epoch, built on the view below.
    pub fn verify(&self, genesis: &Genesis, height: u64) -> Result<(), CertificateError> {
        if self.header.height != height {
            return Err(CertificateError::WrongHeight { expected: height, found: self.header.height });
        }
        let mut below = &self.header;
        for header in &self.descendants {
            let follows = header.parent == below.digest()
                && below.height.checked_add(1) == Some(header.height)
                && header.epoch == below.epoch
                && header.parent_view == below.view
                && header.view > below.view;
            if !follows {
                return Err(CertificateError::BrokenChain { height: header.height });
            }
            below = header;
        }
        let top = self.certified();
        let proposal = &self.finalization.proposal;
        if proposal.payload != top.digest() {
            return Err(CertificateError::WrongBlock { certified: proposal.payload, top: top.digest() });
        }
        let (epoch, view) = (proposal.epoch().get(), proposal.view().get());
        if epoch != top.epoch || view != top.view || proposal.parent.get() != top.parent_view {
            return Err(CertificateError::WrongRound { epoch, view });
        }
        let verifier = certificate_verifier(genesis);
        let mut rng = commonware_utils::sys_rng();
        if !self.finalization.verify(&mut rng, &verifier, &commonware_parallel::Sequential) {
            return Err(CertificateError::BadSignatures);
        }
        Ok(())
    }

    /// The validators whose signatures the certificate carries (it does not check them: see
    /// `verify`).
    pub fn signers(&self, genesis: &Genesis) -> Vec<ValidatorKey> {
        let participants = Set::try_from(genesis.validators().to_vec()).expect("genesis validators are unique");
        let signers = &self.finalization.certificate.signers;
        signers.iter().filter_map(|index| participants.get(index.get() as usize).cloned()).collect()
    }

    /// Decodes bytes from `encode`, bounding the certificate by the genesis committee's size.
    pub fn decode(bytes: &[u8], genesis: &Genesis) -> Result<Self, CertificateError> {
        let config = certificate_verifier(genesis).certificate_codec_config();
        let mut buf = bytes::Bytes::copy_from_slice(bytes);
        let malformed = |error: CodecError| CertificateError::Malformed(error.to_string());
        let header = Header::read_cfg(&mut buf, &()).map_err(malformed)?;
        if buf.remaining() < 2 {
            return Err(CertificateError::Malformed("no descendant count".into()));
        }
        let count = buf.get_u16() as usize;
        if count > CERTIFIED_DESCENDANTS_MAX || buf.remaining() < count * BLOCK_HEADER_SIZE {
            return Err(CertificateError::Malformed(format!("{count} descendants")));
        }
        let descendants =
            (0..count).map(|_| Header::read_cfg(&mut buf, &())).collect::<Result<Vec<_>, _>>().map_err(malformed)?;
        let finalization = Finalization::decode_cfg(buf, &config).map_err(malformed)?;
        Ok(Self { header, descendants, finalization })
    }
}

impl Write for CertifiedHeader {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        buf.put_u16(u16::try_from(self.descendants.len()).expect("at most CERTIFIED_DESCENDANTS_MAX"));
        for header in &self.descendants {
            header.write(buf);
        }
        self.finalization.write(buf);
    }
}

impl EncodeSize for CertifiedHeader {
    fn encode_size(&self) -> usize {
        BLOCK_HEADER_SIZE * (1 + self.descendants.len()) + 2 + self.finalization.encode_size()
    }
}

/// A finalization of `header` signed by `signers` (validators of `genesis`), as consensus would
/// make one: for tests, simulations and benchmarks.
pub fn sign_finalization(header: &Header, signers: &[ValidatorSigner], genesis: &Genesis) -> Finalization {
    let round = Round::new(Epoch::new(header.epoch), View::new(header.view));
    let proposal = Proposal::new(round, View::new(header.parent_view), header.digest());
    let participants = Set::try_from(genesis.validators().to_vec()).expect("genesis validators are unique");
    let mut finalizes = signers.iter().map(|signer| {
        let scheme = Scheme::signer(&genesis.consensus_namespace(), participants.clone(), signer.clone())
            .expect("a genesis validator signs");
        Finalize::sign(&scheme, proposal.clone()).expect("a finalize signs")
    });
    let first = finalizes.next().expect("at least one signer");
    let finalizes: Vec<_> = finalizes.collect();
    let verifier = certificate_verifier(genesis);
    Finalization::from_owned_finalizes(
        &verifier,
        NonEmpty::new(first, finalizes.into_iter()),
        &commonware_parallel::Sequential,
    )
    .expect("a finalization of distinct signers")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, BlockContext};
    use crate::execution::ChainState;
    use crate::keys::{public_key, signer_from_seed};
    use commonware_codec::Encode as _;

    struct Fixture {
        genesis: Genesis,
        signers: Vec<ValidatorSigner>,
        /// Headers of heights 1, 2, 3 (views 1, 2, 3).
        headers: Vec<Header>,
    }

    fn fixture() -> Fixture {
        let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
        let validators = signers.iter().map(public_key).collect();
        let genesis = Genesis::new(7, validators, vec![public_key(&signer_from_seed(100))], 1_000).unwrap();
        let leader = genesis.validators()[0].clone();
        let mut parent = genesis.block();
        let mut headers = Vec::new();
        for height in 1..=3u64 {
            let state = ChainState::genesis(&genesis.block());
            let context = BlockContext::following(parent.digest(), height, leader.clone());
            let block = Block::new(context, height, 1_000 + height, state.commitment(), vec![]);
            headers.push(block.header.clone());
            parent = block;
        }
        Fixture { genesis, signers, headers }
    }

    #[test]
    fn a_quorum_of_genesis_validators_proves_a_header_and_those_below_it() {
        let fixture = fixture();
        let finalization = sign_finalization(&fixture.headers[2], &fixture.signers[..3], &fixture.genesis);
        let own = CertifiedHeader {
            header: fixture.headers[2].clone(),
            descendants: vec![],
            finalization: finalization.clone(),
        };
        own.verify(&fixture.genesis, 3).unwrap();
        assert_eq!(own.verify(&fixture.genesis, 2), Err(CertificateError::WrongHeight { expected: 2, found: 3 }));
        let below = CertifiedHeader {
            header: fixture.headers[0].clone(),
            descendants: fixture.headers[1..].to_vec(),
            finalization: finalization.clone(),
        };
        below.verify(&fixture.genesis, 1).unwrap();
        let bytes = below.encode();
        assert_eq!(bytes.len(), below.encode_size());
        assert_eq!(CertifiedHeader::decode(&bytes, &fixture.genesis).unwrap(), below);
    }

    #[test]
    fn what_a_certificate_does_not_prove_is_refused() {
        let fixture = fixture();
        let finalization = sign_finalization(&fixture.headers[2], &fixture.signers[..3], &fixture.genesis);
        let proof = |header: usize, descendants: &[Header], finalization: &Finalization| CertifiedHeader {
            header: fixture.headers[header].clone(),
            descendants: descendants.to_vec(),
            finalization: finalization.clone(),
        };

        // Another header in place of the certified one.
        let error = proof(1, &[], &finalization).verify(&fixture.genesis, 2).unwrap_err();
        assert!(matches!(error, CertificateError::WrongBlock { .. }), "{error}");
        // A gap in the chain.
        let error = proof(0, &fixture.headers[2..], &finalization).verify(&fixture.genesis, 1).unwrap_err();
        assert_eq!(error, CertificateError::BrokenChain { height: 3 });
        // A header claiming another height, view or epoch below the certified one.
        for change in 0..3 {
            let mut below = fixture.headers[1].clone();
            match change {
                0 => below.height += 1,
                1 => below.view += 5,
                _ => below.epoch += 1,
            }
            let mut top = fixture.headers[2].clone();
            top.parent = below.digest();
            let finalization = sign_finalization(&top, &fixture.signers[..3], &fixture.genesis);
            let error = CertifiedHeader { header: below.clone(), descendants: vec![top], finalization }
                .verify(&fixture.genesis, below.height);
            assert!(matches!(error, Err(CertificateError::BrokenChain { height: _ })), "change {change}: {error:?}");
        }
        // A changed header below the certified one breaks the chain.
        let mut forged = fixture.headers[1].clone();
        forged.timestamp_ns += 1;
        let error = proof(0, &[forged, fixture.headers[2].clone()], &finalization).verify(&fixture.genesis, 1);
        assert!(matches!(error, Err(CertificateError::BrokenChain { .. })));
        // An altered signature.
        let mut bytes = proof(2, &[], &finalization).encode().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = CertifiedHeader::decode(&bytes, &fixture.genesis).unwrap();
        assert_eq!(altered.verify(&fixture.genesis, 3), Err(CertificateError::BadSignatures));
        // Signatures of another chain's validators (another genesis, another namespace).
        let strangers: Vec<ValidatorSigner> = (10..14).map(signer_from_seed).collect();
        let other = Genesis::new(7, strangers.iter().map(public_key).collect(), vec![], 1_000).unwrap();
        let foreign = sign_finalization(&fixture.headers[2], &strangers[..3], &other);
        assert_eq!(proof(2, &[], &foreign).verify(&fixture.genesis, 3), Err(CertificateError::BadSignatures));
        let renamed = Genesis::new(8, fixture.genesis.validators().to_vec(), vec![], 1_000).unwrap();
        let replayed = sign_finalization(&fixture.headers[2], &fixture.signers[..3], &renamed);
        assert_eq!(proof(2, &[], &replayed).verify(&fixture.genesis, 3), Err(CertificateError::BadSignatures));
        // A certificate for the right block in another round, epoch or parent view.
        let mut moved = finalization.clone();
        moved.proposal.round = Round::new(Epoch::new(0), View::new(9));
        assert!(matches!(proof(2, &[], &moved).verify(&fixture.genesis, 3), Err(CertificateError::WrongRound { .. })));
        let mut moved = finalization.clone();
        moved.proposal.round = Round::new(Epoch::new(1), View::new(3));
        assert!(matches!(proof(2, &[], &moved).verify(&fixture.genesis, 3), Err(CertificateError::WrongRound { .. })));
        let mut moved = finalization.clone();
        moved.proposal.parent = View::new(1);
        assert!(matches!(proof(2, &[], &moved).verify(&fixture.genesis, 3), Err(CertificateError::WrongRound { .. })));
    }

    #[test]
    fn malformed_bytes_are_refused_without_panicking() {
        let fixture = fixture();
        let finalization = sign_finalization(&fixture.headers[2], &fixture.signers[..3], &fixture.genesis);
        let bytes = CertifiedHeader {
            header: fixture.headers[1].clone(),
            descendants: vec![fixture.headers[2].clone()],
            finalization,
        }
        .encode()
        .to_vec();
        for cut in [0, 10, BLOCK_HEADER_SIZE, BLOCK_HEADER_SIZE + 1, BLOCK_HEADER_SIZE + 2, bytes.len() - 1] {
            assert!(CertifiedHeader::decode(&bytes[..cut], &fixture.genesis).is_err(), "cut at {cut}");
        }
        let mut count = bytes.clone();
        count[BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + 2].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(CertifiedHeader::decode(&count, &fixture.genesis), Err(CertificateError::Malformed(_))));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(CertifiedHeader::decode(&trailing, &fixture.genesis).is_err());
    }
}
