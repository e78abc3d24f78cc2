//! The genesis: what every validator agrees on before the first block. The chain id, the
//! validators (consensus keys), the clients allowed to write, and the genesis time.

use crate::block::{Block, BlockContext, BlockDigest, hash};
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
        Ok(Self { chain_id, validators, clients: clients.into_iter().collect(), timestamp_ns })
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
        hash(&bytes)
    }

    /// The genesis block: height 0, epoch 0, view 0, no requests, committing to the empty state.
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
        Block::new(context, 0, self.timestamp_ns, crate::execution::ChainState::empty_commitment(), Vec::new())
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
