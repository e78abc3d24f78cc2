//! Blocks: the unit Simplex orders, a header and a body.
//!
//! The **header** is what consensus votes on (the block digest is SHA-256 of the encoded header),
//! and it is small and fixed-size, so that a finalized header with its certificate can prove
//! facts about a block without carrying the block:
//! - `epoch`, `view`, `leader`, `parent_view`, `parent`: the consensus context it was proposed
//!   in (Simplex's round, its leader, and the certified parent it builds on), so that a header
//!   can be checked against the round that certified it without asking consensus;
//! - `height`, `timestamp_ns`: where the block sits in the chain and the proposer's clock;
//! - `request_count` and `requests_root`: a binary Merkle root (Commonware's `bmt`, SHA-256)
//!   over the SHA-256 of each request's encoding, in body order, so one request's inclusion is
//!   proven by a path of at most 4 digests (16 requests per block);
//! - `state_digest` and `results_root`: the state after executing the **parent** block, and a
//!   Merkle root over the parent's request outcomes (`execution.rs` defines the leaves). The lag
//!   is one block: a block's own execution is checked when its child is verified, and a
//!   finalized header proves its parent's results.
//!
//! The **body** is the requests. A block decoded from bytes recomputes the requests root from
//! its body and refuses a header that disagrees, so a body cannot be swapped under a header.
//!
//! Wire format (big-endian, fixed width):
//!
//! ```text
//! header (206 bytes):
//!   version (2) | epoch (8) | view (8) | leader (32) | parent view (8) | parent (32)
//!   | height (8) | timestamp ns (8) | request count (4) | requests root (32)
//!   | state digest (32) | results root (32)
//! body:
//!   request count × request (each as in `request.rs`)
//! ```
//!
//! `version` is `PROTOCOL_VERSION`; a decoder refuses any other. The request count is checked
//! against `BLOCK_REQUESTS_MAX`, and the whole encoding against `BLOCK_SIZE_MAX`, before anything
//! is allocated. The encoding is canonical: every byte string decodes to at most one block and
//! re-encodes to itself.

use crate::constants::{BLOCK_HEADER_SIZE, BLOCK_REQUESTS_MAX, BLOCK_SIZE_MAX, PROTOCOL_VERSION};
use crate::keys::ValidatorKey;
use crate::request::Request;
use bytes::{Buf as _, BufMut};
use commonware_codec::{Buf, Encode as _, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt as _, Write};
use commonware_cryptography::{Hasher as _, Sha256, sha256};
use commonware_storage::bmt;

/// The digest of a block (of its header): what consensus votes on.
pub type BlockDigest = sha256::Digest;

/// A binary Merkle root (requests or results).
pub type Root = sha256::Digest;

/// The 32-byte digest of the ledger state.
pub type StateDigest = [u8; 32];

/// Hashes bytes into a block digest.
pub(crate) fn hash(bytes: &[u8]) -> BlockDigest {
    Sha256::hash(&[bytes])
}

/// The binary Merkle root over `leaves`, in order (`bmt` binds the leaf count into the root).
pub fn merkle_root(leaves: impl ExactSizeIterator<Item = sha256::Digest>) -> Root {
    let mut builder = bmt::Builder::<Sha256>::new(leaves.len());
    for leaf in leaves {
        builder.add(&leaf);
    }
    builder.build().root()
}

/// The Merkle root of a body: over the SHA-256 of each request's encoding.
pub fn requests_root(requests: &[Request]) -> Root {
    merkle_root(requests.iter().map(|request| hash(&request.encode())))
}

/// What a block commits to about its parent's execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitment {
    /// The state digest after executing every block up to and including the parent.
    pub state_digest: StateDigest,
    /// The Merkle root over the parent's request outcomes.
    pub results_root: Root,
}

/// The consensus context a block is proposed in: the round, its leader, and the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    pub epoch: u64,
    pub view: u64,
    pub leader: ValidatorKey,
    /// The view the parent was certified in (0 for the genesis block).
    pub parent_view: u64,
    pub parent: BlockDigest,
}

impl BlockContext {
    /// The context of a round of epoch 0 whose parent was certified in the view just before it
    /// (a round that skipped no view).
    pub fn following(parent: BlockDigest, view: u64, leader: ValidatorKey) -> Self {
        Self { epoch: 0, view, leader, parent_view: view.saturating_sub(1), parent }
    }
}

/// A block header: the fixed-size part that consensus votes on and certificates sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub epoch: u64,
    pub view: u64,
    pub leader: ValidatorKey,
    pub parent_view: u64,
    pub parent: BlockDigest,
    pub height: u64,
    pub timestamp_ns: u64,
    pub request_count: u32,
    pub requests_root: Root,
    /// The state after executing the parent.
    pub state_digest: StateDigest,
    /// The Merkle root over the parent's request outcomes.
    pub results_root: Root,
}

impl Header {
    /// The block digest: SHA-256 of the encoded header.
    pub fn digest(&self) -> BlockDigest {
        hash(&self.encode())
    }

    /// What the header commits to about its parent's execution.
    pub fn commitment(&self) -> Commitment {
        Commitment { state_digest: self.state_digest, results_root: self.results_root }
    }

    /// The consensus context the block was proposed in.
    pub fn context(&self) -> BlockContext {
        BlockContext {
            epoch: self.epoch,
            view: self.view,
            leader: self.leader.clone(),
            parent_view: self.parent_view,
            parent: self.parent,
        }
    }
}

impl Write for Header {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u16(self.version);
        buf.put_u64(self.epoch);
        buf.put_u64(self.view);
        self.leader.write(buf);
        buf.put_u64(self.parent_view);
        self.parent.write(buf);
        buf.put_u64(self.height);
        buf.put_u64(self.timestamp_ns);
        buf.put_u32(self.request_count);
        self.requests_root.write(buf);
        buf.put_slice(&self.state_digest);
        self.results_root.write(buf);
    }
}

impl FixedSize for Header {
    const SIZE: usize = BLOCK_HEADER_SIZE;
}

impl Read for Header {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u16::read(buf)?;
        if version != PROTOCOL_VERSION {
            return Err(CodecError::Invalid("Header", "unsupported protocol version"));
        }
        let epoch = u64::read(buf)?;
        let view = u64::read(buf)?;
        // Any 32 bytes that decode as a point; whether it is the round's leader is checked
        // against the consensus context.
        let leader = ValidatorKey::read(buf)?;
        let parent_view = u64::read(buf)?;
        let parent = BlockDigest::read(buf)?;
        let height = u64::read(buf)?;
        let timestamp_ns = u64::read(buf)?;
        let request_count = u32::read(buf)?;
        if request_count as usize > BLOCK_REQUESTS_MAX {
            return Err(CodecError::InvalidLength(request_count as usize));
        }
        let requests_root = Root::read(buf)?;
        let state_digest = <[u8; 32]>::read(buf)?;
        let results_root = Root::read(buf)?;
        Ok(Self {
            version,
            epoch,
            view,
            leader,
            parent_view,
            parent,
            height,
            timestamp_ns,
            request_count,
            requests_root,
            state_digest,
            results_root,
        })
    }
}

/// A proposed or finalized block: its header and the requests it orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: Header,
    pub requests: Vec<Request>,
    /// Cached digest of the header.
    digest: BlockDigest,
}

impl Block {
    /// Builds a block of this protocol version and computes its roots and digest.
    ///
    /// # Panics
    /// If the block is over the request or size limits: proposers check them first.
    pub fn new(
        context: BlockContext,
        height: u64,
        timestamp_ns: u64,
        commitment: Commitment,
        requests: Vec<Request>,
    ) -> Self {
        assert!(requests.len() <= BLOCK_REQUESTS_MAX, "a proposer checks the request limit");
        let BlockContext { epoch, view, leader, parent_view, parent } = context;
        let header = Header {
            version: PROTOCOL_VERSION,
            epoch,
            view,
            leader,
            parent_view,
            parent,
            height,
            timestamp_ns,
            request_count: u32::try_from(requests.len()).expect("request count checked"),
            requests_root: requests_root(&requests),
            state_digest: commitment.state_digest,
            results_root: commitment.results_root,
        };
        let block = Self { digest: header.digest(), header, requests };
        assert!(block.encode_size() <= BLOCK_SIZE_MAX, "a proposer checks the size limit");
        block
    }

    pub fn digest(&self) -> BlockDigest {
        self.digest
    }
}

impl commonware_cryptography::Digestible for Block {
    type Digest = BlockDigest;

    fn digest(&self) -> BlockDigest {
        self.digest
    }
}

impl commonware_consensus::Heightable for Block {
    fn height(&self) -> commonware_consensus::types::Height {
        commonware_consensus::types::Height::new(self.header.height)
    }
}

/// What marshal (Commonware's ordered delivery of finalized blocks) needs of a block: its
/// height, digest and parent.
impl commonware_consensus::Block for Block {
    fn parent(&self) -> BlockDigest {
        self.header.parent
    }
}

impl commonware_consensus::BoundedBlock for Block {
    fn max_encode_size(_: &()) -> usize {
        BLOCK_SIZE_MAX
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        for request in &self.requests {
            request.write(buf);
        }
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        BLOCK_HEADER_SIZE + self.requests.iter().map(EncodeSize::encode_size).sum::<usize>()
    }
}

impl Read for Block {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        // Bound the whole block before reading any part of it.
        if buf.remaining() > BLOCK_SIZE_MAX {
            return Err(CodecError::InvalidLength(buf.remaining()));
        }
        let header = Header::read(buf)?;
        let mut requests = Vec::with_capacity(header.request_count as usize);
        for _ in 0..header.request_count {
            requests.push(Request::read(buf)?);
        }
        if requests_root(&requests) != header.requests_root {
            return Err(CodecError::Invalid("Block", "the body does not match the header's requests root"));
        }
        Ok(Self { digest: header.digest(), header, requests })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockContext;
    use crate::constants::{EVENT_SIZE, REQUEST_EVENTS_MAX, REQUEST_HEADER_SIZE};
    use crate::keys;
    use commonware_codec::Decode as _;
    use tally_ledger::Transfer;

    /// An expiry ahead of every block timestamp these tests use (a few seconds after 1970).
    const EXPIRES_NS: u64 = 300_000_000_000;

    fn test_leader() -> crate::keys::ValidatorKey {
        crate::keys::public_key(&crate::keys::signer_from_seed(0))
    }

    fn request(id: u128, events: usize) -> Request {
        let transfers: Vec<Transfer> = (0..events as u128)
            .map(|index| Transfer {
                id: index + 1,
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 1,
                ledger: 1,
                code: 1,
                ..Transfer::default()
            })
            .collect();
        Request::create_transfers(1, id, EXPIRES_NS, &keys::signer_from_seed(3), &transfers).unwrap()
    }

    fn commitment(byte: u8) -> Commitment {
        Commitment { state_digest: [byte; 32], results_root: hash(&[byte]) }
    }

    fn block(requests: Vec<Request>) -> Block {
        Block::new(BlockContext::following(hash(b"parent"), 9, test_leader()), 7, 1_000, commitment(5), requests)
    }

    #[test]
    fn round_trips_with_a_stable_digest_of_the_header() {
        let original = block(vec![request(1, 2), request(2, 1)]);
        let bytes = original.encode();
        assert_eq!(bytes.len(), BLOCK_HEADER_SIZE + 2 * REQUEST_HEADER_SIZE + 3 * EVENT_SIZE);
        let decoded = Block::decode_cfg(bytes.clone(), &()).unwrap();
        assert_eq!(decoded, original);
        assert_eq!(decoded.digest(), hash(&bytes[..BLOCK_HEADER_SIZE]));
        assert_eq!(decoded.digest(), original.header.digest());
        assert_eq!(Header::decode_cfg(bytes.slice(..BLOCK_HEADER_SIZE), &()).unwrap(), original.header);
        assert_eq!(original.header.request_count, 2);
        assert_eq!(original.header.version, PROTOCOL_VERSION);
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = block(vec![request(1, 1)]);
        let at = |parent: &[u8], view, height, timestamp_ns, commitment, requests| {
            Block::new(
                BlockContext::following(hash(parent), view, test_leader()),
                height,
                timestamp_ns,
                commitment,
                requests,
            )
        };
        let other_results = Commitment { results_root: hash(b"other"), ..commitment(5) };
        let variants = [
            at(b"other", 9, 7, 1_000, commitment(5), vec![request(1, 1)]),
            at(b"parent", 9, 8, 1_000, commitment(5), vec![request(1, 1)]),
            at(b"parent", 10, 7, 1_000, commitment(5), vec![request(1, 1)]),
            at(b"parent", 9, 7, 1_001, commitment(5), vec![request(1, 1)]),
            at(b"parent", 9, 7, 1_000, commitment(6), vec![request(1, 1)]),
            at(b"parent", 9, 7, 1_000, other_results, vec![request(1, 1)]),
            at(b"parent", 9, 7, 1_000, commitment(5), vec![request(2, 1)]),
            at(b"parent", 9, 7, 1_000, commitment(5), vec![]),
        ];
        for variant in variants {
            assert_ne!(variant.digest(), base.digest());
        }
        let mut header = base.header.clone();
        header.epoch = 1;
        assert_ne!(header.digest(), base.digest());
        let mut header = base.header.clone();
        header.parent_view = 3;
        assert_ne!(header.digest(), base.digest());
        let mut header = base.header.clone();
        header.leader = crate::keys::public_key(&crate::keys::signer_from_seed(1));
        assert_ne!(header.digest(), base.digest());
    }

    #[test]
    fn a_body_that_does_not_match_its_header_is_refused() {
        // Swap the one request's body for another of the same size: the header no longer
        // commits to it.
        let original = block(vec![request(1, 1)]).encode().to_vec();
        let other = block(vec![request(2, 1)]).encode().to_vec();
        let mut swapped = original[..BLOCK_HEADER_SIZE].to_vec();
        swapped.extend_from_slice(&other[BLOCK_HEADER_SIZE..]);
        assert_eq!(swapped.len(), original.len());
        assert!(matches!(Block::decode_cfg(bytes::Bytes::from(swapped), &()), Err(CodecError::Invalid("Block", _))));
    }

    #[test]
    fn decode_refuses_other_protocol_versions() {
        let mut bytes = block(vec![]).encode().to_vec();
        bytes[..2].copy_from_slice(&(PROTOCOL_VERSION + 1).to_be_bytes());
        assert!(matches!(
            Block::decode_cfg(bytes::Bytes::from(bytes.clone()), &()),
            Err(CodecError::Invalid("Header", _))
        ));
    }

    #[test]
    fn decode_refuses_too_many_requests_before_allocating() {
        let mut bytes = block(vec![]).encode().to_vec();
        let count_at = 2 + 8 + 8 + 32 + 8 + 32 + 8 + 8;
        bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(Block::decode_cfg(bytes::Bytes::from(bytes.clone()), &()), Err(CodecError::InvalidLength(_))));
        bytes[count_at..count_at + 4].copy_from_slice(&((BLOCK_REQUESTS_MAX + 1) as u32).to_be_bytes());
        assert!(matches!(Block::decode_cfg(bytes::Bytes::from(bytes.clone()), &()), Err(CodecError::InvalidLength(_))));
        // A count within the limit whose requests are missing.
        bytes[count_at..count_at + 4].copy_from_slice(&1u32.to_be_bytes());
        assert!(Block::decode_cfg(bytes::Bytes::from(bytes.clone()), &()).is_err());
    }

    #[test]
    fn decode_refuses_oversized_blocks() {
        let full = || request(1, REQUEST_EVENTS_MAX);
        // Three full requests fit in the size limit; the decoder also refuses any input longer
        // than the limit outright.
        let fits = block(vec![full(), full(), full()]);
        assert!(fits.encode().len() <= BLOCK_SIZE_MAX);
        let mut bytes = fits.encode().to_vec();
        bytes.resize(BLOCK_SIZE_MAX + 1, 0);
        assert!(matches!(Block::decode_cfg(bytes::Bytes::from(bytes.clone()), &()), Err(CodecError::InvalidLength(_))));
    }

    #[test]
    fn decode_refuses_trailing_bytes() {
        let mut bytes = block(vec![request(1, 1)]).encode().to_vec();
        bytes.push(0);
        assert!(matches!(Block::decode_cfg(bytes::Bytes::from(bytes.clone()), &()), Err(CodecError::ExtraData(1))));
    }

    #[test]
    fn one_request_is_proven_under_the_requests_root() {
        let requests: Vec<Request> = (1..=5).map(|id| request(id, 1)).collect();
        let block = block(requests.clone());
        let mut builder = bmt::Builder::<Sha256>::new(requests.len());
        for request in &requests {
            builder.add(&hash(&request.encode()));
        }
        let tree = builder.build();
        assert_eq!(tree.root(), block.header.requests_root);
        let proof = tree.proof(3).unwrap();
        let leaf = hash(&requests[3].encode());
        assert!(proof.verify_element_inclusion::<Sha256>(&leaf, 3, &block.header.requests_root).is_ok());
        let other = hash(&requests[2].encode());
        assert!(proof.verify_element_inclusion::<Sha256>(&other, 3, &block.header.requests_root).is_err());
    }
}
