//! The genesis: what every validator agrees on before the first block. The chain id, the
//! validators (consensus keys), the clients allowed to write, and the genesis time; and, for a
//! chain re-founded from a backup of another, the state it starts from (`Founding`).

use crate::block::{Block, BlockContext, BlockDigest, Commitment, StateDigest, hash};
use crate::error::ChainError;
use crate::keys::{ClientKey, ValidatorKey, is_strong_key};
use commonware_utils::{Faults as _, N3f1};
use std::collections::BTreeSet;

/// A chain's genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    chain_id: u64,
    validators: Vec<ValidatorKey>,
    clients: BTreeSet<ClientKey>,
    timestamp_ns: u64,
    founding: Option<Founding>,
}

/// The state a re-founded chain starts from: another chain's state at a height (a verified
/// backup of it), with every request it included moved to height 0 of the new chain (so that
/// a retry of one is still refused as a repeat, and no height of the old chain is mistaken for
/// one of the new). Its ledger is the old chain's, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Founding {
    /// The chain the backup is of (never the new chain's id).
    pub chain_id: u64,
    /// The backup's height on that chain.
    pub height: u64,
    /// The block at that height on that chain.
    pub block: BlockDigest,
    /// The digest of the state the new chain starts from (`ChainState::refound`): what the
    /// genesis block commits to.
    pub state_digest: StateDigest,
}

impl Genesis {
    /// Builds a genesis, refusing weak keys (small order or non-canonical).
    pub fn new(
        chain_id: u64,
        validators: Vec<ValidatorKey>,
        clients: Vec<ClientKey>,
        timestamp_ns: u64,
    ) -> Result<Self, ChainError> {
        if validators.is_empty() {
            return Err(ChainError::NoValidators);
        }
        for key in validators.iter().chain(clients.iter()) {
            if !is_strong_key(key) {
                return Err(ChainError::WeakKey { key: key.to_string() });
            }
        }
        let mut validators = validators;
        validators.sort();
        validators.dedup();
        Ok(Self { chain_id, validators, clients: clients.into_iter().collect(), timestamp_ns, founding: None })
    }

    /// This genesis, starting from `founding` instead of the empty state. Refuses a founding of
    /// the same chain id: the new chain's votes and requests must not be valid on the old one.
    pub fn with_founding(mut self, founding: Founding) -> Result<Self, ChainError> {
        if founding.chain_id == self.chain_id {
            return Err(ChainError::Founding(format!(
                "the new chain's id must differ from the backup's chain ({})",
                founding.chain_id
            )));
        }
        self.founding = Some(founding);
        Ok(self)
    }

    /// The state this chain starts from, if it was re-founded from a backup.
    pub fn founding(&self) -> Option<&Founding> {
        self.founding.as_ref()
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The validators, sorted and without repeats.
    pub fn validators(&self) -> &[ValidatorKey] {
        &self.validators
    }

    /// How many faulty validators the genesis set tolerates (Simplex's `n >= 3f + 1` model).
    pub fn faults_tolerated(&self) -> usize {
        N3f1::max_faults(self.validators.len()) as usize
    }

    /// How many validators' votes make a certificate: `n - f`.
    pub fn quorum(&self) -> usize {
        N3f1::quorum(self.validators.len()) as usize
    }

    pub fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }

    /// The clients allowed to write, in key order.
    pub fn clients(&self) -> impl Iterator<Item = &ClientKey> {
        self.clients.iter()
    }

    /// Whether `client` may submit requests.
    pub fn allows_client(&self, client: &ClientKey) -> bool {
        self.clients.contains(client)
    }

    /// The namespace of this chain's consensus votes, so that votes of one chain are worthless on
    /// another.
    pub fn consensus_namespace(&self) -> Vec<u8> {
        let mut namespace = crate::constants::CONSENSUS_NAMESPACE.to_vec();
        namespace.extend_from_slice(&self.chain_id.to_be_bytes());
        namespace
    }

    /// A digest of everything in the genesis: the genesis block's parent.
    fn commitment(&self) -> BlockDigest {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&self.chain_id.to_be_bytes());
        bytes.extend_from_slice(&self.timestamp_ns.to_be_bytes());
        bytes.extend_from_slice(&(self.validators.len() as u64).to_be_bytes());
        for key in &self.validators {
            bytes.extend_from_slice(key.as_ref());
        }
        bytes.extend_from_slice(&(self.clients.len() as u64).to_be_bytes());
        for key in &self.clients {
            bytes.extend_from_slice(key.as_ref());
        }
        // Only a re-founded chain's genesis has more, so every other digest is unchanged.
        if let Some(founding) = &self.founding {
            bytes.push(1);
            bytes.extend_from_slice(&founding.chain_id.to_be_bytes());
            bytes.extend_from_slice(&founding.height.to_be_bytes());
            bytes.extend_from_slice(founding.block.as_ref());
            bytes.extend_from_slice(&founding.state_digest);
        }
        hash(&bytes)
    }

    /// What the genesis block commits to: the empty state, or the founding state.
    pub fn commitment_of_state(&self) -> Commitment {
        match &self.founding {
            None => crate::execution::ChainState::empty_commitment(),
            Some(founding) => {
                Commitment { state_digest: founding.state_digest, results_root: crate::execution::results_root(&[]) }
            }
        }
    }

    /// The genesis block: height 0, epoch 0, view 0, no requests, committing to the empty state
    /// (or a re-founded chain's founding state).
    /// Its parent is a digest of the genesis itself, and it names the first validator as its
    /// leader (no one proposed it).
    pub fn block(&self) -> Block {
        let context = BlockContext {
            epoch: 0,
            view: 0,
            leader: self.validators[0].clone(),
            parent_view: 0,
            parent: self.commitment(),
        };
        Block::new(context, 0, self.timestamp_ns, self.commitment_of_state(), Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{public_key, signer_from_seed};
    use commonware_codec::DecodeExt as _;

    #[test]
    fn the_genesis_block_commits_to_every_field() {
        let validators = vec![public_key(&signer_from_seed(0)), public_key(&signer_from_seed(1))];
        let clients = vec![public_key(&signer_from_seed(10))];
        let genesis = Genesis::new(1, validators.clone(), clients.clone(), 5).unwrap();
        let digest = genesis.block().digest();
        assert_eq!(Genesis::new(1, validators.clone(), clients.clone(), 5).unwrap().block().digest(), digest);
        assert_ne!(Genesis::new(2, validators.clone(), clients.clone(), 5).unwrap().block().digest(), digest);
        assert_ne!(Genesis::new(1, validators.clone(), clients.clone(), 6).unwrap().block().digest(), digest);
        assert_ne!(Genesis::new(1, validators[..1].to_vec(), clients.clone(), 5).unwrap().block().digest(), digest);
        assert_ne!(Genesis::new(1, validators.clone(), vec![], 5).unwrap().block().digest(), digest);
        let founding = Founding { chain_id: 7, height: 40, block: hash(b"block"), state_digest: [3; 32] };
        let founded = genesis.clone().with_founding(founding.clone()).unwrap();
        assert_ne!(founded.block().digest(), digest);
        assert_eq!(founded.block().header.state_digest, [3; 32], "the genesis block commits to the founding state");
        for changed in [
            Founding { chain_id: 8, ..founding.clone() },
            Founding { height: 41, ..founding.clone() },
            Founding { block: hash(b"other"), ..founding.clone() },
            Founding { state_digest: [4; 32], ..founding.clone() },
        ] {
            assert_ne!(genesis.clone().with_founding(changed).unwrap().block().digest(), founded.block().digest());
        }
        let same_chain = Founding { chain_id: 1, ..founding };
        assert!(matches!(genesis.with_founding(same_chain), Err(ChainError::Founding(_))));
    }

    #[test]
    fn weak_keys_and_empty_committees_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = ClientKey::decode(identity.as_slice().to_vec()).unwrap();
        let validators = vec![public_key(&signer_from_seed(0))];
        assert!(matches!(Genesis::new(1, validators.clone(), vec![weak], 0), Err(ChainError::WeakKey { .. })));
        assert_eq!(Genesis::new(1, vec![], vec![], 0), Err(ChainError::NoValidators));
    }
}
