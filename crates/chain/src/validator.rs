//! One validator: the Simplex engine and the application actor, wired to seven channels.
//!
//! Generic over the runtime (clock, spawner, storage, randomness) and the network (any
//! Commonware p2p sender/receiver), so the same code runs on the deterministic runtime with
//! simulated links in tests and on tokio with authenticated TCP in production.

use crate::application::{Actor, ActorConfig, Fault, Links, Mailbox};
use crate::consensus::{ConsensusConfig, signing_scheme, simplex_config};
use crate::error::ChainError;
use crate::genesis::Genesis;
use crate::keys::{ValidatorKey, ValidatorSigner};
use commonware_consensus::simplex::Engine;
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage, Supervisor};
use rand_core::CryptoRng;

/// Channel ids of a validator's network links.
pub mod channel {
    pub const VOTES: u64 = 0;
    pub const CERTIFICATES: u64 = 1;
    pub const RESOLVER: u64 = 2;
    pub const BLOCKS: u64 = 3;
    pub const REQUESTS: u64 = 4;
    pub const FETCH: u64 = 5;
    pub const SNAPSHOTS: u64 = 6;
}

/// A validator's network links: three for Simplex, one for block contents, one for client
/// request gossip, one to ask peers for missing blocks, one to fetch snapshots.
#[derive(Debug)]
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    pub resolver: (S, R),
    pub blocks: (S, R),
    pub requests: (S, R),
    pub fetch: (S, R),
    pub snapshots: (S, R),
}

impl<S, R> Channels<S, R> {
    /// The seven links, each made by `register` from its channel id.
    pub fn register(mut register: impl FnMut(u64) -> (S, R)) -> Self {
        Self {
            votes: register(channel::VOTES),
            certificates: register(channel::CERTIFICATES),
            resolver: register(channel::RESOLVER),
            blocks: register(channel::BLOCKS),
            requests: register(channel::REQUESTS),
            fetch: register(channel::FETCH),
            snapshots: register(channel::SNAPSHOTS),
        }
    }
}

/// A running validator.
pub struct Validator {
    pub mailbox: Mailbox,
    pub consensus: Handle<()>,
    pub application: Handle<()>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("mailbox", &self.mailbox).finish_non_exhaustive()
    }
}

/// Starts an honest validator of `genesis` with key `signer`.
pub fn start<E, B, S, R>(
    context: E,
    genesis: Genesis,
    signer: ValidatorSigner,
    config: ConsensusConfig,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Validator, ChainError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    B: Blocker<PublicKey = ValidatorKey>,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
{
    start_with_fault(context, genesis, signer, config, blocker, channels, Fault::None)
}

/// Starts a validator whose proposer misbehaves as `fault` says (the simulator's Byzantine
/// validators).
pub fn start_with_fault<E, B, S, R>(
    context: E,
    genesis: Genesis,
    signer: ValidatorSigner,
    config: ConsensusConfig,
    blocker: B,
    channels: Channels<S, R>,
    fault: Fault,
) -> Result<Validator, ChainError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    B: Blocker<PublicKey = ValidatorKey>,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
{
    let scheme = signing_scheme(&genesis, signer).ok_or(ChainError::NotAValidator)?;
    let actor_config = ActorConfig {
        genesis: genesis.clone(),
        log_partition: format!("{}-finalized", config.partition),
        voted_partition: format!("{}-voted", config.partition),
        snapshot_partition: format!("{}-snapshots", config.partition),
        snapshot_interval: config.snapshot_interval.clamp(1, crate::consensus::SNAPSHOT_INTERVAL_MAX),
        fault,
        blocker: blocker.clone(),
    };
    let links = Links {
        blocks: channels.blocks,
        requests: channels.requests,
        fetch: channels.fetch,
        snapshots: channels.snapshots,
    };
    let (actor, mailbox) = Actor::new(context.child("application"), actor_config, links);
    let application = actor.start();
    let engine =
        Engine::new(context.child("consensus"), simplex_config(&genesis, scheme, blocker, mailbox.clone(), &config));
    let consensus = engine.start(channels.votes, channels.certificates, channels.resolver);
    Ok(Validator { mailbox, consensus, application })
}
