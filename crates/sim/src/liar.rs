//! Validators that lie to clients, and the lies they tell.
//!
//! Every Byzantine validator of a scenario, and the scenario's liar (a validator honest in
//! consensus that lies only to clients), answers every client with a lie: it takes the true
//! receipt its honest self would serve and changes one part of it, as a validator that wants a
//! client to believe something false would. The simulated clients decode and verify every
//! receipt against the genesis, as the SDK does, and must refuse every lie and accept every
//! true receipt; the checkers report a lie accepted or a true receipt refused, and count the
//! lies caught.
//!
//! The lies: an outcome's status, its height, the request's block header, the certified
//! header, a certificate signer swapped for one that did not sign, a signature's byte, the
//! certificate cut to f + 1 signatures, a certificate from another chain's validators, another
//! request's receipt; for reads, an account's balance, another account's receipt, and a receipt
//! older than one the client has seen.

use crate::scenario::Draw;
use commonware_cryptography::certificate::Signers;
use commonware_utils::Participant;
use tally_chain::certified::{CertifiedHeader, sign_finalization};
use tally_chain::keys::{ValidatorSigner, public_key, signer_from_seed};
use tally_chain::receipt::OutcomeReceipt;
use tally_chain::state_receipt::StateReceipt;
use tally_chain::{Genesis, RequestResult};
use tally_ledger::{CreateAccountStatus, CreateTransferStatus};

/// One kind of lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lie {
    /// An outcome's first event with another status (created where it failed, or the reverse).
    Status,
    /// An outcome at a height other than its block's.
    Height,
    /// The request's block header with another timestamp.
    BlockHeader,
    /// The certified header with another timestamp.
    CertifiedHeader,
    /// A signer the certificate names replaced by one that did not sign.
    Signer,
    /// A byte of the certificate's last signature flipped.
    Signature,
    /// The certificate cut to f + 1 of its signatures.
    CutCertificate,
    /// The certified header signed by a quorum of another chain's validators.
    AnotherChain,
    /// The receipt of another request.
    OtherRequest,
    /// An account's balance raised.
    Balance,
    /// The receipt of another account.
    OtherAccount,
    /// A true receipt of the same account, older than a state the client has seen.
    Stale,
}

impl Lie {
    pub fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Height => "height",
            Self::BlockHeader => "block header",
            Self::CertifiedHeader => "certified header",
            Self::Signer => "signer",
            Self::Signature => "signature",
            Self::CutCertificate => "cut certificate",
            Self::AnotherChain => "another chain",
            Self::OtherRequest => "other request",
            Self::Balance => "balance",
            Self::OtherAccount => "other account",
            Self::Stale => "stale state",
        }
    }
}

/// The lies that change a certified header, told of outcome and state receipts alike.
const CERTIFICATE_LIES: [Lie; 6] =
    [Lie::CertifiedHeader, Lie::Signer, Lie::Signature, Lie::CutCertificate, Lie::AnotherChain, Lie::Height];

/// A lying validator's memory: the true receipts it served, to pass one off for another.
#[derive(Debug)]
pub struct Liar {
    draw: Draw,
    genesis: Genesis,
    /// A quorum of another chain's validators, and that chain's genesis.
    strangers: (Genesis, Vec<ValidatorSigner>),
    outcomes: Vec<OutcomeReceipt>,
    states: Vec<StateReceipt>,
}

/// The most receipts a liar remembers of each kind.
const REMEMBERED_MAX: usize = 32;

fn remember<T>(list: &mut Vec<T>, item: T) {
    if list.len() == REMEMBERED_MAX {
        list.remove(0);
    }
    list.push(item);
}

impl Liar {
    pub fn new(seed: u64, genesis: &Genesis) -> Self {
        let signers: Vec<ValidatorSigner> =
            (0..genesis.validators().len() as u64).map(|index| signer_from_seed(0x5_7a4e_0000 + index)).collect();
        let strangers = Genesis::new(
            genesis.chain_id() ^ 1,
            signers.iter().map(public_key).collect(),
            genesis.clients().cloned().collect(),
            0,
        )
        .expect("seeded keys are strong");
        Self {
            draw: Draw::new(seed),
            genesis: genesis.clone(),
            strangers: (strangers, signers),
            outcomes: Vec::new(),
            states: Vec::new(),
        }
    }

    /// The bytes a lying validator serves in place of `truth`, and the lie they tell.
    pub fn outcome(&mut self, truth: OutcomeReceipt) -> (Lie, Vec<u8>) {
        let other = self.outcomes.iter().rev().find(|other| other.key != truth.key).cloned();
        remember(&mut self.outcomes, truth.clone());
        let mut lie = match self.draw.below(4) {
            0 => Lie::Status,
            1 => Lie::BlockHeader,
            2 => Lie::OtherRequest,
            _ => CERTIFICATE_LIES[self.draw.index(CERTIFICATE_LIES.len())],
        };
        if lie == Lie::OtherRequest && other.is_none() {
            lie = Lie::Status;
        }
        let mut receipt = truth;
        match lie {
            Lie::Status => receipt.outcome.result = other_status(&receipt.outcome.result),
            Lie::Height => receipt.outcome.height += 1,
            Lie::BlockHeader => receipt.header.timestamp_ns += 1,
            Lie::OtherRequest => receipt = other.expect("checked above"),
            certificate => lie = self.change_certificate(certificate, &mut receipt.above),
        }
        (lie, with_signature_flipped(lie, receipt.encode()))
    }

    /// The bytes a lying validator serves in place of `truth`, a receipt of one account, to a
    /// client that has seen the state at `seen_height`.
    pub fn state(&mut self, truth: StateReceipt, seen_height: u64) -> (Lie, Vec<u8>) {
        let asked = truth.proof.accounts.first().map(|(account, _)| account.id);
        let other = self
            .states
            .iter()
            .rev()
            .find(|other| other.proof.accounts.first().map(|(account, _)| account.id) != asked)
            .cloned();
        // An older receipt of the same account is a lie only where the client has seen a
        // later state: otherwise it is true, as of its height.
        let stale = self
            .states
            .iter()
            .find(|old| {
                old.proof.accounts.first().map(|(account, _)| account.id) == asked && old.proof.height < seen_height
            })
            .cloned();
        remember(&mut self.states, truth.clone());
        let mut lie = match self.draw.below(4) {
            0 => Lie::Balance,
            1 => Lie::OtherAccount,
            2 => Lie::Stale,
            _ => CERTIFICATE_LIES[self.draw.index(CERTIFICATE_LIES.len())],
        };
        if (lie == Lie::OtherAccount && other.is_none()) || (lie == Lie::Stale && stale.is_none()) {
            lie = Lie::Balance;
        }
        let mut receipt = truth;
        match lie {
            Lie::Balance => receipt.proof.accounts[0].0.credits_posted += 1_000,
            Lie::OtherAccount => receipt = other.expect("checked above"),
            Lie::Stale => receipt = stale.expect("checked above"),
            certificate => lie = self.change_certificate(certificate, &mut receipt.certified),
        }
        (lie, with_signature_flipped(lie, receipt.encode()))
    }

    /// Tells `lie` of `certified`; returns the lie told (a signer cannot be swapped for one
    /// that did not sign when every validator signed: the signature is changed then).
    fn change_certificate(&self, lie: Lie, certified: &mut CertifiedHeader) -> Lie {
        let validators = self.genesis.validators().len() as u32;
        let certificate = &mut certified.finalization.certificate;
        match lie {
            Lie::CertifiedHeader => certified.header.timestamp_ns += 1,
            Lie::Height => certified.header.height += 1,
            Lie::Signer => {
                let mut signers: Vec<Participant> = certificate.signers.iter().collect();
                match (0..validators).map(Participant::new).find(|index| !signers.contains(index)) {
                    Some(absent) => {
                        *signers.last_mut().expect("a certificate has signers") = absent;
                        signers.sort();
                        certificate.signers = Signers::new(validators, signers).expect("distinct signers");
                    }
                    None => return Lie::Signature,
                }
            }
            // Changed in the receipt's bytes (`with_signature_flipped`).
            Lie::Signature => {}
            Lie::CutCertificate => {
                let kept = (validators as usize - 1) / 3 + 1;
                let first: Vec<Participant> = certificate.signers.iter().take(kept).collect();
                certificate.signers = Signers::new(validators, first).expect("distinct signers");
                certificate.signatures.truncate(kept);
            }
            Lie::AnotherChain => {
                let (genesis, signers) = &self.strangers;
                let quorum = signers.len() - (signers.len() - 1) / 3;
                certified.finalization = sign_finalization(certified.certified(), &signers[..quorum], genesis);
            }
            other => unreachable!("{other:?} does not change a certificate"),
        }
        lie
    }
}

/// The first event's status changed: created where it failed, failed where it was created.
fn other_status(result: &RequestResult) -> RequestResult {
    let mut result = result.clone();
    match &mut result {
        RequestResult::Transfers(results) if !results.is_empty() => {
            results[0].status = if results[0].status == CreateTransferStatus::Created {
                CreateTransferStatus::ExceedsCredits
            } else {
                CreateTransferStatus::Created
            };
        }
        RequestResult::Accounts(results) if !results.is_empty() => {
            results[0].status = if results[0].status == CreateAccountStatus::Created {
                CreateAccountStatus::Exists
            } else {
                CreateAccountStatus::Created
            };
        }
        // No event to change: claim the batch's events were all created, as no event.
        RequestResult::Refused(_) => result = RequestResult::Transfers(Vec::new()),
        _ => result = RequestResult::Refused(tally_ledger::BatchError::TimestampOutOfRange { timestamp: 0, events: 0 }),
    }
    result
}

/// `bytes` with, for `Lie::Signature`, a bit of the certificate's last signature flipped: a
/// receipt ends with its certified header, which ends with the certificate's signatures.
fn with_signature_flipped(lie: Lie, mut bytes: Vec<u8>) -> Vec<u8> {
    if lie == Lie::Signature {
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use tally_chain::block::{Block, BlockContext};
    use tally_chain::{ChainState, Request};
    use tally_ledger::Account;

    const EXPIRES_NS: u64 = 300_000_000_000;

    struct Fixture {
        genesis: Genesis,
        requests: Vec<Request>,
        outcomes: Vec<OutcomeReceipt>,
        states: Vec<StateReceipt>,
    }

    /// Block 1 creates accounts 1 and 2 in two requests; block 2 above it commits to their
    /// outcomes and to the state after block 1, and is finalized by three of four validators.
    fn fixture() -> Fixture {
        let signers: Vec<ValidatorSigner> = (0..4).map(signer_from_seed).collect();
        let client = signer_from_seed(100);
        let genesis =
            Genesis::new(7, signers.iter().map(public_key).collect(), vec![public_key(&client)], 1_000).unwrap();
        let requests: Vec<Request> = (1..=2u128)
            .map(|id| {
                let account = Account { id, ledger: 1, code: 1, ..Account::default() };
                Request::create_accounts(7, id, EXPIRES_NS, &client, &[account]).unwrap()
            })
            .collect();
        let leader = genesis.validators()[0].clone();
        let state = ChainState::genesis(&genesis.block());
        let block = Block::new(
            BlockContext::following(genesis.block().digest(), 1, leader.clone()),
            1,
            2_000,
            state.commitment(),
            requests.clone(),
        );
        state.check_child(&genesis, &block).unwrap();
        let (state, outcomes) = state.execute(&block);
        let above =
            Block::new(BlockContext::following(block.digest(), 2, leader), 2, 3_000, state.commitment(), vec![]);
        let finalization = sign_finalization(&above.header, &signers[..3], &genesis);
        let certified = CertifiedHeader { header: above.header.clone(), descendants: vec![], finalization };
        let outcomes: Vec<_> = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
        let receipts = (0..2)
            .map(|position| {
                OutcomeReceipt::build(block.header.clone(), &requests, &outcomes, position, certified.clone())
            })
            .collect();
        let states = [1, 2]
            .map(|id| {
                StateReceipt::new(
                    tally_chain::state_receipt::StateProof::collect(&state, &[id], &[]),
                    certified.clone(),
                )
            })
            .to_vec();
        Fixture { genesis, requests, outcomes: receipts, states }
    }

    /// Every lie about an outcome is refused by a client that verifies the receipt for its own
    /// request, and every kind is told.
    #[test]
    fn every_lie_about_an_outcome_is_refused() {
        let Fixture { genesis, requests, outcomes, .. } = fixture();
        for (position, receipt) in outcomes.iter().enumerate() {
            receipt.verify_for(&genesis, &requests[position]).expect("the true receipt verifies");
        }
        let mut liar = Liar::new(3, &genesis);
        let mut told = BTreeSet::new();
        for round in 0..300 {
            let position = round % 2;
            let (lie, bytes) = liar.outcome(outcomes[position].clone());
            let verdict = OutcomeReceipt::decode(&bytes, &genesis)
                .and_then(|receipt| receipt.verify_for(&genesis, &requests[position]));
            assert!(verdict.is_err(), "the lie {lie:?} verified");
            told.insert(lie);
        }
        let expected = [
            Lie::Status,
            Lie::Height,
            Lie::BlockHeader,
            Lie::CertifiedHeader,
            Lie::Signer,
            Lie::Signature,
            Lie::CutCertificate,
            Lie::AnotherChain,
            Lie::OtherRequest,
        ];
        assert_eq!(told, expected.into_iter().collect());
    }

    /// Every lie about an account is refused by a client that verifies the receipt and checks it
    /// is of the account asked; a stale one is older than the state the client has seen.
    #[test]
    fn every_lie_about_an_account_is_refused() {
        let Fixture { genesis, states, .. } = fixture();
        let mut liar = Liar::new(5, &genesis);
        let mut told = BTreeSet::new();
        for round in 0..300 {
            let asked = round % 2;
            let seen = if round < 10 { 0 } else { 2 };
            let (lie, bytes) = liar.state(states[asked].clone(), seen);
            let verdict =
                StateReceipt::decode(&bytes, &genesis).and_then(|receipt| receipt.verify(&genesis).map(|_| receipt));
            match (lie, verdict) {
                (Lie::Stale, Ok(receipt)) => assert!(receipt.proof.height < seen, "a stale receipt is older than seen"),
                (Lie::OtherAccount, Ok(receipt)) => {
                    assert_ne!(receipt.proof.accounts[0].0.id, states[asked].proof.accounts[0].0.id)
                }
                (lie, Ok(_)) => panic!("the lie {lie:?} verified"),
                (_, Err(_)) => {}
            }
            told.insert(lie);
        }
        let expected = [
            Lie::Balance,
            Lie::OtherAccount,
            Lie::Stale,
            Lie::Height,
            Lie::CertifiedHeader,
            Lie::Signer,
            Lie::Signature,
            Lie::CutCertificate,
            Lie::AnotherChain,
        ];
        assert_eq!(told, expected.into_iter().collect());
    }
}
