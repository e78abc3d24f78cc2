//! Byzantine proposers: wrappers around the honest application, as Commonware's `simplex/mocks`
//! wrap honest actors. A [`ByzantineProposer`] asks the honest application for its block,
//! corrupts it, and hands the corrupted block to marshal, which broadcasts it; everything else
//! (its verifications, votes, execution) stays honest. Each corrupted block is well formed (its
//! header is sealed over its requests), so only the chain's rules can refuse it.
//!
//! Honest validators must refuse every such block, so it can never be notarized: the checkers
//! re-execute every finalized block with the chain's rules, and each honest validator counts
//! the blocks it refused (`SeedReport::blocks_refused`).

use commonware_codec::EncodeSize as _;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::{Application, Handoff};
use commonware_cryptography::Digested;
use commonware_runtime::Clock;
use tally_chain::application::marshaled::Marshaled;
use tally_chain::block::Block;
use tally_chain::consensus::{ConsensusContext, Scheme};
use tally_chain::constants::{BLOCK_HEADER_SIZE, BLOCK_REQUESTS_MAX, BLOCK_SIZE_MAX};
use tally_chain::keys::{ClientKey, signer_from_seed};
use tally_chain::{Genesis, Request};
use tally_ledger::Transfer;

/// How a Byzantine proposer corrupts the blocks it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Adds a request that claims a listed client but is signed by another key.
    ForgedRequest,
    /// Commits to a ledger digest other than the one after the parent.
    WrongStateDigest,
}

/// The id a forged request uses: far from any honest client's ids, one per view.
pub fn forged_request_id(view: u64) -> u128 {
    u128::MAX - u128::from(view)
}

impl Corruption {
    /// `block` corrupted as `self` says, for a chain with id `chain_id`. `victim` is the client
    /// a forgery claims to be.
    pub fn apply(self, block: &Block, chain_id: u64, victim: &ClientKey) -> Block {
        let header = &block.header;
        let mut commitment = header.commitment();
        let mut requests = block.requests.clone();
        match self {
            Self::ForgedRequest => {
                let id = forged_request_id(header.view);
                let transfer = Transfer {
                    id,
                    debit_account_id: 1,
                    credit_account_id: 2,
                    amount: 1_000_000,
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                };
                // A valid signature over the request, but by a key that is not the victim's.
                let forger = signer_from_seed(u64::MAX - header.view);
                let signed = Request::create_transfers(chain_id, id, header.timestamp_ns, &forger, &[transfer])
                    .expect("one transfer is a valid body");
                let forged = Request::from_parts(
                    signed.kind(),
                    id,
                    signed.expires_ns(),
                    victim.clone(),
                    signed.body().to_vec(),
                    signed.signature().clone(),
                )
                .expect("the body was valid when signed");
                requests.insert(0, forged);
                // Make room for the forgery within the block limits, dropping the latest
                // honest requests.
                while requests.len() > BLOCK_REQUESTS_MAX
                    || BLOCK_HEADER_SIZE + requests.iter().map(|request| request.encode_size()).sum::<usize>()
                        > BLOCK_SIZE_MAX
                {
                    requests.pop();
                }
            }
            Self::WrongStateDigest => commitment.state_digest[0] ^= 1,
        }
        Block::new(header.context(), header.height, header.timestamp_ns, commitment, requests)
    }
}

/// The honest application of a validator, with every block it proposes corrupted.
#[derive(Debug, Clone)]
pub struct ByzantineProposer {
    honest: Marshaled,
    corruption: Corruption,
    chain_id: u64,
    /// The client forged requests claim to be: the genesis's first.
    victim: ClientKey,
}

impl ByzantineProposer {
    /// Wraps `honest`, the application of a validator of `genesis`.
    ///
    /// # Panics
    /// If `genesis` lists no client (a forgery needs one to claim).
    pub fn new(honest: Marshaled, corruption: Corruption, genesis: &Genesis) -> Self {
        let victim = genesis.clients().next().expect("the simulator's genesis lists clients").clone();
        Self { honest, corruption, chain_id: genesis.chain_id(), victim }
    }

    fn corrupt(&self, honest: &Digested<Block>) -> Digested<Block> {
        let corrupted = self.corruption.apply(honest.inner(), self.chain_id, &self.victim);
        assert_ne!(corrupted.digest(), honest.inner().digest(), "a corruption changes the block");
        let digest = corrupted.digest();
        Digested::precomputed(corrupted, digest)
    }
}

impl<E: Clock + Send + Sync + 'static> Application<E> for ByzantineProposer {
    type SigningScheme = Scheme;
    type Context = ConsensusContext;
    type Block = Block;
    type Input = ();

    async fn prepare(
        &mut self,
        context: (E, ConsensusContext),
        ancestry: impl Ancestry<Block>,
        input: (),
    ) -> Handoff<Digested<Block>> {
        let prepared = self.honest.prepare(context, ancestry, input).await;
        prepared.map(|honest| self.corrupt(&honest))
    }

    async fn propose(
        &mut self,
        context: (E, ConsensusContext),
        ancestry: impl Ancestry<Block>,
        input: (),
    ) -> Option<Digested<Block>> {
        let honest = self.honest.propose(context, ancestry, input).await?;
        Some(self.corrupt(&honest))
    }

    async fn verify(&mut self, context: (E, ConsensusContext), ancestry: impl Ancestry<Block>) -> bool {
        self.honest.verify(context, ancestry).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_chain::ChainError;
    use tally_chain::application::ApplicationState;
    use tally_chain::application::state::Lookup;
    use tally_chain::block::BlockContext;
    use tally_chain::keys::public_key;

    const EXPIRES_NS: u64 = 300_000_000_000;

    /// Each corruption of an honest proposal is a well-formed block that an honest validator
    /// refuses, with the error that names the corruption.
    #[test]
    fn honest_validators_refuse_each_corruption() {
        let leader = signer_from_seed(0);
        let client = signer_from_seed(50);
        let genesis = Genesis::new(9, vec![public_key(&leader)], vec![public_key(&client)], 1_000).unwrap();
        let transfer = Transfer {
            id: 1,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        let victim = genesis.clients().next().unwrap().clone();
        for (corruption, expected) in [
            (Corruption::ForgedRequest, ChainError::BadSignature),
            (Corruption::WrongStateDigest, ChainError::WrongStateDigest),
        ] {
            let mut proposer = ApplicationState::new(genesis.clone());
            let mut honest = ApplicationState::new(genesis.clone());
            proposer
                .submit(
                    Request::create_transfers(9, 1, EXPIRES_NS, &client, &[transfer.clone()])
                        .unwrap()
                        .verify(9)
                        .unwrap(),
                    0,
                )
                .unwrap();
            let context = BlockContext::following(proposer.genesis_digest(), 1, public_key(&leader));
            let block = proposer.propose(context.clone(), 5_000).unwrap();
            let corrupted = corruption.apply(&block, genesis.chain_id(), &victim);
            assert_eq!(corrupted.header.context(), block.header.context(), "{corruption:?}");
            assert_eq!(corrupted.header.height, block.header.height, "{corruption:?}");
            match corruption {
                Corruption::ForgedRequest => {
                    assert_eq!(corrupted.requests.len(), 2);
                    assert_eq!(corrupted.requests[0].client(), &victim);
                    assert_eq!(corrupted.requests[0].id(), forged_request_id(1));
                    assert_eq!(corrupted.requests[1..], block.requests[..]);
                }
                Corruption::WrongStateDigest => {
                    assert_eq!(corrupted.requests, block.requests);
                    assert_ne!(corrupted.header.state_digest, block.header.state_digest);
                }
            }
            honest.insert_block(corrupted.clone()).unwrap();
            let verdict = honest.verify(&context, corrupted.digest(), 5_000);
            assert!(matches!(&verdict, Lookup::Invalid(error) if *error == expected), "{corruption:?}: {verdict:?}");
            // The honest block of the same round passes.
            honest.insert_block(block.clone()).unwrap();
            assert!(matches!(honest.verify(&context, block.digest(), 5_000), Lookup::Ready), "{corruption:?}");
        }
    }

    /// A forgery added to a full block replaces its latest request.
    #[test]
    fn a_forgery_keeps_a_full_block_within_its_limits() {
        let leader = signer_from_seed(0);
        let client = signer_from_seed(50);
        let genesis = Genesis::new(9, vec![public_key(&leader)], vec![public_key(&client)], 1_000).unwrap();
        let mut proposer = ApplicationState::new(genesis.clone());
        for id in 1..=BLOCK_REQUESTS_MAX as u128 + 1 {
            let transfer = Transfer {
                id,
                debit_account_id: 1,
                credit_account_id: 2,
                amount: 1,
                ledger: 1,
                code: 1,
                ..Transfer::default()
            };
            proposer
                .submit(
                    Request::create_transfers(9, id, EXPIRES_NS, &client, &[transfer]).unwrap().verify(9).unwrap(),
                    0,
                )
                .unwrap();
        }
        let context = BlockContext::following(proposer.genesis_digest(), 1, public_key(&leader));
        let block = proposer.propose(context, 5_000).unwrap();
        assert_eq!(block.requests.len(), BLOCK_REQUESTS_MAX);
        let victim = genesis.clients().next().unwrap().clone();
        let corrupted = Corruption::ForgedRequest.apply(&block, genesis.chain_id(), &victim);
        assert_eq!(corrupted.requests.len(), BLOCK_REQUESTS_MAX);
        assert_eq!(corrupted.requests[1..], block.requests[..BLOCK_REQUESTS_MAX - 1]);
    }
}
