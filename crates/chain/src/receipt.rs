//! Receipts: proof, checkable by anyone who holds the genesis, that a request was ordered at a
//! height and what the ledger answered to it.
//!
//! A request included in block `h` is proven by:
//! - block `h`'s header, and a Merkle path from the SHA-256 of the request's encoding to that
//!   header's `requests_root` (its position in the body);
//! - the finalized header of block `h + 1` with its certificate (`certified.rs`): it names block
//!   `h` as its parent, and its `results_root` commits to what block `h`'s requests did;
//! - the request's outcome (its events digest, height, timestamp and each event's result) and
//!   a Merkle path from its leaf (`RequestOutcome::leaf`, which names the request) to that root,
//!   at the same position.
//!
//! So one validator's answer cannot lie about an outcome without forging a quorum of validator
//! signatures. A receipt exists once block `h + 1` is finalized: a block with requests is
//! followed at once by the next one, whose header commits to their results.
//!
//! Encoding (big-endian):
//!
//! ```text
//! client (32) | request id (16) | request digest (32) | position (4)
//! | requests proof | events digest (32) | height (8) | timestamp ns (8) | result
//! | results proof | header of block h (206) | certified header of block h + 1
//! ```
//!
//! where a proof is Commonware's `bmt` proof (`leaf count (4) | sibling count (varint) |
//! siblings (32 each)`), the result is as in the results root (`execution.rs`), and the certified
//! header as in `certified.rs`.

use crate::block::{Header, Root, hash};
use crate::certified::{CertificateError, CertifiedHeader};
use crate::constants::{BLOCK_HEADER_SIZE, BLOCK_REQUESTS_MAX};
use crate::execution::{RequestOutcome, RequestResult};
use crate::genesis::Genesis;
use crate::keys::{ClientKey, ValidatorKey};
use crate::request::{Request, RequestKey};
use bytes::BufMut;
use commonware_codec::{Encode as _, EncodeSize as _, Error as CodecError, Read as _, ReadExt as _, Write as _};
use commonware_cryptography::{Sha256, sha256};
use commonware_storage::bmt;

/// Why a receipt does not prove an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("malformed receipt: {0}")]
    Malformed(String),
    #[error("the header above the request's block is not proven final: {0}")]
    Certificate(#[from] CertificateError),
    #[error("the certified header at height {above} does not follow the request's block")]
    NotTheParent { above: u64 },
    #[error("the request is not included in the block at height {height}")]
    NotIncluded { height: u64 },
    #[error("the outcome says height {found}, but the request's block is at height {height}")]
    WrongHeight { height: u64, found: u64 },
    #[error("the outcome is not the one the block at height {above} commits to")]
    NotCommitted { above: u64 },
    #[error("the receipt is for request {found}, not for the request {expected}")]
    OtherRequest { expected: String, found: String },
}

/// A request's outcome with the proof that it is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeReceipt {
    pub key: RequestKey,
    /// The SHA-256 of the request's encoding: the leaf under the requests root.
    pub request_digest: sha256::Digest,
    /// The request's position in its block's body (and its outcome's among the block's).
    pub position: u32,
    pub requests_proof: bmt::Proof<sha256::Digest>,
    pub outcome: RequestOutcome,
    pub results_proof: bmt::Proof<sha256::Digest>,
    /// The header of the block that includes the request.
    pub header: Header,
    /// The header of the block above, proven final.
    pub above: CertifiedHeader,
}

/// What a checked receipt establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The height of the block that includes the request.
    pub height: u64,
    /// The validators whose signatures finalized the header above it.
    pub signers: Vec<ValidatorKey>,
    /// How many validators the genesis names.
    pub validators: usize,
}

/// The Merkle tree over `leaves` and the proof of the leaf at `position`.
fn prove(leaves: &[sha256::Digest], position: usize) -> bmt::Proof<sha256::Digest> {
    let mut builder = bmt::Builder::<Sha256>::new(leaves.len());
    for leaf in leaves {
        builder.add(leaf);
    }
    let position = u32::try_from(position).expect("a block holds at most 16 requests");
    builder.build().proof(position).expect("the position is within the leaves")
}

fn includes(proof: &bmt::Proof<sha256::Digest>, leaf: &sha256::Digest, position: u32, root: &Root) -> bool {
    proof.verify_element_inclusion::<Sha256>(leaf, position, root).is_ok()
}

impl OutcomeReceipt {
    /// Builds the receipt of the request at `position` in a finalized block, from the block's
    /// requests, their outcomes (in body order) and the certified header of the block above.
    pub fn build(
        header: Header,
        requests: &[Request],
        outcomes: &[RequestOutcome],
        position: usize,
        above: CertifiedHeader,
    ) -> Self {
        assert_eq!(requests.len(), outcomes.len(), "one outcome per request");
        assert_eq!(above.header.parent, header.digest(), "the certified header is the block's child");
        let request_leaves: Vec<_> = requests.iter().map(|request| hash(&request.encode())).collect();
        let result_leaves: Vec<_> =
            requests.iter().zip(outcomes).map(|(request, outcome)| outcome.leaf(&request.key())).collect();
        let receipt = Self {
            key: requests[position].key(),
            request_digest: request_leaves[position],
            position: u32::try_from(position).expect("a block holds at most 16 requests"),
            requests_proof: prove(&request_leaves, position),
            outcome: outcomes[position].clone(),
            results_proof: prove(&result_leaves, position),
            header,
            above,
        };
        debug_assert!(includes(
            &receipt.results_proof,
            &receipt.outcome.leaf(&receipt.key),
            receipt.position,
            &receipt.above.header.results_root
        ));
        receipt
    }

    /// Checks the receipt against the genesis alone: the header above is finalized by a quorum
    /// of the genesis validators and follows the request's block, the request is in that block
    /// at `position`, and the outcome is the one the header above commits to.
    pub fn verify(&self, genesis: &Genesis) -> Result<Verified, ReceiptError> {
        let height = self.header.height;
        let above = height.checked_add(1).ok_or(ReceiptError::NotTheParent { above: height })?;
        self.above.verify(genesis, above)?;
        if self.above.header.parent != self.header.digest() {
            return Err(ReceiptError::NotTheParent { above });
        }
        let count = self.header.request_count;
        if self.requests_proof.leaf_count != count
            || !includes(&self.requests_proof, &self.request_digest, self.position, &self.header.requests_root)
        {
            return Err(ReceiptError::NotIncluded { height });
        }
        if self.outcome.height != height {
            return Err(ReceiptError::WrongHeight { height, found: self.outcome.height });
        }
        if self.results_proof.leaf_count != count
            || !includes(
                &self.results_proof,
                &self.outcome.leaf(&self.key),
                self.position,
                &self.above.header.results_root,
            )
        {
            return Err(ReceiptError::NotCommitted { above });
        }
        Ok(Verified { height, signers: self.above.signers(genesis), validators: genesis.validators().len() })
    }

    /// `verify`, and that the receipt is for this request, as a client that sent it checks: its
    /// name and its events (the outcome's events digest). Not its bytes: a client that signed
    /// its retry again holds other bytes (another expiry) for the same request.
    pub fn verify_for(&self, genesis: &Genesis, request: &Request) -> Result<Verified, ReceiptError> {
        if self.key != request.key() || self.outcome.events_digest != request.events_digest() {
            return Err(ReceiptError::OtherRequest {
                expected: format!("{} of client {}", request.id(), hex(request.client().as_ref())),
                found: format!("{} of client {}", self.key.id, hex(self.key.client.as_ref())),
            });
        }
        self.verify(genesis)
    }

    /// The receipt's bytes (see the module's documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        buf.put_slice(self.key.client.as_ref());
        buf.put_u128(self.key.id);
        buf.put_slice(self.request_digest.as_ref());
        buf.put_u32(self.position);
        self.requests_proof.write(&mut buf);
        buf.put_slice(&self.outcome.events_digest);
        buf.put_u64(self.outcome.height);
        buf.put_u64(self.outcome.timestamp_ns);
        self.outcome.result.write(&mut buf);
        self.results_proof.write(&mut buf);
        self.header.write(&mut buf);
        buf.put_slice(&self.above.encode());
        buf
    }

    /// Decodes `encode`'s bytes, bounding every length before allocating.
    pub fn decode(bytes: &[u8], genesis: &Genesis) -> Result<Self, ReceiptError> {
        let malformed = |error: CodecError| ReceiptError::Malformed(error.to_string());
        let mut buf = bytes::Bytes::copy_from_slice(bytes);
        let client = ClientKey::read(&mut buf).map_err(malformed)?;
        let id = u128::read(&mut buf).map_err(malformed)?;
        let request_digest = sha256::Digest::read(&mut buf).map_err(malformed)?;
        let position = u32::read(&mut buf).map_err(malformed)?;
        let requests_proof = bmt::Proof::read_cfg(&mut buf, &1).map_err(malformed)?;
        let events_digest = <[u8; 32]>::read(&mut buf).map_err(malformed)?;
        let height = u64::read(&mut buf).map_err(malformed)?;
        let timestamp_ns = u64::read(&mut buf).map_err(malformed)?;
        let result = RequestResult::read(&mut buf).map_err(malformed)?;
        let results_proof = bmt::Proof::read_cfg(&mut buf, &1).map_err(malformed)?;
        let header = Header::read_cfg(&mut buf, &()).map_err(malformed)?;
        let above = CertifiedHeader::decode(buf.as_ref(), genesis)?;
        if position as usize >= BLOCK_REQUESTS_MAX {
            return Err(ReceiptError::Malformed(format!("position {position}")));
        }
        let outcome = RequestOutcome { events_digest, height, timestamp_ns, result };
        Ok(Self {
            key: RequestKey { client, id },
            request_digest,
            position,
            requests_proof,
            outcome,
            results_proof,
            header,
            above,
        })
    }

    /// The encoded size in bytes.
    pub fn size(&self) -> usize {
        32 + 16
            + 32
            + 4
            + self.requests_proof.encode_size()
            + 32
            + 16
            + self.outcome.result.encode_size()
            + self.results_proof.encode_size()
            + BLOCK_HEADER_SIZE
            + self.above.encode_size()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, BlockContext, Commitment};
    use crate::certified::sign_finalization;
    use crate::execution::results_root;
    use crate::keys::{ValidatorSigner, public_key, signer_from_seed};
    use tally_ledger::{Account, CreateAccountResult, CreateAccountStatus};

    /// An expiry ahead of every block timestamp these tests use (a few seconds after 1970).
    const EXPIRES_NS: u64 = 300_000_000_000;

    struct Fixture {
        genesis: Genesis,
        requests: Vec<Request>,
        receipt: OutcomeReceipt,
    }

    /// Block 1 with three requests, block 2 above it committing to their outcomes, finalized by
    /// three of four validators; the receipt of the second request.
    fn fixture() -> Fixture {
        let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
        let client = signer_from_seed(100);
        let genesis =
            Genesis::new(7, signers.iter().map(public_key).collect(), vec![public_key(&client)], 1_000).unwrap();
        let requests: Vec<Request> = (1..=3u128)
            .map(|id| {
                let account = Account { id, ledger: 1, code: 1, ..Account::default() };
                Request::create_accounts(7, id, EXPIRES_NS, &client, &[account]).unwrap()
            })
            .collect();
        let outcomes: Vec<RequestOutcome> = requests
            .iter()
            .enumerate()
            .map(|(index, request)| RequestOutcome {
                events_digest: request.events_digest(),
                height: 1,
                timestamp_ns: 5_000 + index as u64,
                result: RequestResult::Accounts(vec![CreateAccountResult {
                    timestamp: 5_000 + index as u64,
                    status: if index == 1 { CreateAccountStatus::Exists } else { CreateAccountStatus::Created },
                }]),
            })
            .collect();
        let leader = genesis.validators()[0].clone();
        let genesis_block = genesis.block();
        let commitment = Commitment { state_digest: [1; 32], results_root: results_root(&[]) };
        let block = Block::new(
            BlockContext::following(genesis_block.digest(), 1, leader.clone()),
            1,
            2_000,
            commitment,
            requests.clone(),
        );
        let keyed: Vec<_> = requests.iter().map(Request::key).zip(outcomes.iter().cloned()).collect();
        let commitment = Commitment { state_digest: [2; 32], results_root: results_root(&keyed) };
        let above = Block::new(BlockContext::following(block.digest(), 2, leader), 2, 3_000, commitment, vec![]);
        let finalization = sign_finalization(&above.header, &signers[..3], &genesis);
        let certified = CertifiedHeader { header: above.header.clone(), descendants: vec![], finalization };
        let receipt = OutcomeReceipt::build(block.header.clone(), &requests, &outcomes, 1, certified);
        Fixture { genesis, requests, receipt }
    }

    #[test]
    fn a_receipt_proves_a_requests_outcome_to_anyone_holding_the_genesis() {
        let Fixture { genesis, requests, receipt } = fixture();
        let verified = receipt.verify_for(&genesis, &requests[1]).unwrap();
        assert_eq!((verified.height, verified.signers.len(), verified.validators), (1, 3, 4));
        assert_eq!(
            receipt.outcome.result,
            RequestResult::Accounts(vec![CreateAccountResult {
                timestamp: 5_001,
                status: CreateAccountStatus::Exists
            }])
        );
        let bytes = receipt.encode();
        assert_eq!(bytes.len(), receipt.size());
        assert_eq!(OutcomeReceipt::decode(&bytes, &genesis).unwrap(), receipt);
        // Another request's receipt is not this one's.
        assert!(matches!(receipt.verify_for(&genesis, &requests[0]), Err(ReceiptError::OtherRequest { .. })));
        // The same request signed again (another expiry, other bytes) is this one; the same id
        // with other events is not.
        let client = signer_from_seed(100);
        let account = |id| Account { id, ledger: 1, code: 1, ..Account::default() };
        let resigned = Request::create_accounts(7, 2, EXPIRES_NS + 1, &client, &[account(2)]).unwrap();
        assert_ne!(resigned.encode(), requests[1].encode());
        receipt.verify_for(&genesis, &resigned).unwrap();
        let other_events = Request::create_accounts(7, 2, EXPIRES_NS, &client, &[account(9)]).unwrap();
        assert!(matches!(receipt.verify_for(&genesis, &other_events), Err(ReceiptError::OtherRequest { .. })));
    }

    #[test]
    fn a_changed_outcome_position_or_header_is_refused() {
        let Fixture { genesis, receipt, .. } = fixture();
        let mut created = receipt.clone();
        created.outcome.result = RequestResult::Accounts(vec![CreateAccountResult {
            timestamp: 5_001,
            status: CreateAccountStatus::Created,
        }]);
        assert_eq!(created.verify(&genesis), Err(ReceiptError::NotCommitted { above: 2 }));
        let mut moved = receipt.clone();
        moved.position = 0;
        assert_eq!(moved.verify(&genesis), Err(ReceiptError::NotIncluded { height: 1 }));
        let mut later = receipt.clone();
        later.outcome.height = 2;
        assert_eq!(later.verify(&genesis), Err(ReceiptError::WrongHeight { height: 1, found: 2 }));
        let mut other_block = receipt.clone();
        other_block.header.timestamp_ns += 1;
        assert_eq!(other_block.verify(&genesis), Err(ReceiptError::NotTheParent { above: 2 }));
        let mut renamed = receipt.clone();
        renamed.key.id = 9;
        assert_eq!(renamed.verify(&genesis), Err(ReceiptError::NotCommitted { above: 2 }));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let Fixture { genesis, receipt, .. } = fixture();
        let bytes = receipt.encode();
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0x01;
            let verdict = OutcomeReceipt::decode(&flipped, &genesis).and_then(|receipt| receipt.verify(&genesis));
            assert!(verdict.is_err(), "byte {index} of {} flipped, and the receipt still verifies", bytes.len());
        }
        assert!(OutcomeReceipt::decode(&bytes[..bytes.len() - 1], &genesis).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(OutcomeReceipt::decode(&longer, &genesis).is_err());
    }

    #[test]
    fn a_receipt_of_another_chain_is_refused() {
        let Fixture { receipt, .. } = fixture();
        let other: Vec<ValidatorSigner> = (10..14).map(signer_from_seed).collect();
        let genesis =
            Genesis::new(7, other.iter().map(public_key).collect(), vec![public_key(&signer_from_seed(100))], 1_000)
                .unwrap();
        assert!(matches!(receipt.verify(&genesis), Err(ReceiptError::Certificate(_))));
    }
}
