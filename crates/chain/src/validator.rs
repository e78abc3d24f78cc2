//! One validator: Simplex, marshal, the application actor and the vote record, wired to seven
//! channels.
//!
//! Generic over the runtime (clock, spawner, storage, randomness) and the network (any
//! Commonware p2p sender/receiver, and the peer provider that says who the validators are), so
//! the same code runs on the deterministic runtime with simulated links in tests and on tokio
//! with authenticated TCP in production.

use crate::application::gossip;
use crate::application::marshaled::{BlockApplication, Marshaled};
use crate::application::{Actor, ActorConfig, Links, Mailbox};
use crate::consensus::{ConsensusConfig, signing_scheme, simplex_config};
use crate::error::ChainError;
use crate::genesis::Genesis;
use crate::keys::{ValidatorKey, ValidatorSigner};
use crate::ordering;
use commonware_consensus::Reporters;
use commonware_consensus::marshal::standard::Inline;
use commonware_consensus::simplex::Engine;
use commonware_macros::select;
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage, Supervisor};
use commonware_utils::channel::{fallible::OneshotExt as _, mpsc, oneshot};
use rand_core::CryptoRng;

/// Channel ids of a validator's network links.
pub mod channel {
    pub const VOTES: u64 = 0;
    pub const CERTIFICATES: u64 = 1;
    pub const RESOLVER: u64 = 2;
    pub const BLOCKS: u64 = 3;
    pub const REQUESTS: u64 = 4;
    pub const BACKFILL: u64 = 5;
    pub const SNAPSHOTS: u64 = 6;
    /// Every channel, in the order of `Channels`' fields.
    pub const ALL: [u64; 7] = [VOTES, CERTIFICATES, RESOLVER, BLOCKS, REQUESTS, BACKFILL, SNAPSHOTS];
}

/// A validator's network links: three for Simplex, two for marshal (block broadcast and
/// backfill), one for client request gossip, one to fetch snapshots.
#[derive(Debug)]
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    pub resolver: (S, R),
    pub blocks: (S, R),
    pub requests: (S, R),
    pub backfill: (S, R),
    pub snapshots: (S, R),
}

impl<S, R> Channels<S, R> {
    /// The seven links, each made by `register` from its channel id.
    pub fn register(register: impl FnMut(u64) -> (S, R)) -> Self {
        Self::from_links(channel::ALL.map(register))
    }

    /// The same, for a network whose registration is asynchronous (the simulated one).
    pub async fn register_async(mut register: impl AsyncFnMut(u64) -> (S, R)) -> Self {
        let mut links = Vec::with_capacity(channel::ALL.len());
        for id in channel::ALL {
            links.push(register(id).await);
        }
        Self::from_links(links.try_into().ok().expect("one link per channel"))
    }

    fn from_links(links: [(S, R); 7]) -> Self {
        let [votes, certificates, resolver, blocks, requests, backfill, snapshots] = links;
        Self { votes, certificates, resolver, blocks, requests, backfill, snapshots }
    }
}

/// A running validator: its mailbox, and the task that supervises its consensus, marshal and
/// application. The task ends (with what ended first) when any of them ends, which only a halt
/// does; stopping it stops them all, as a crash would.
pub struct Validator {
    pub mailbox: Mailbox,
    pub tasks: Handle<String>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("mailbox", &self.mailbox).finish_non_exhaustive()
    }
}

impl Validator {
    /// Stops every task of the validator at once (as `kill -9` would).
    pub fn stop(&self) {
        self.tasks.abort();
    }
}

/// The storage partition of a validator's snapshots, under its partition prefix (`tally
/// restore` seeds a data directory's newest snapshot there).
pub fn snapshot_partition(prefix: &str) -> String {
    format!("{prefix}-snapshots")
}

/// Where `tally restore --first-start` marks a founder of a re-founded chain that has not run
/// yet: its founding state at height 0 is then no reason to hold its votes back.
pub fn first_start_partition(prefix: &str) -> String {
    format!("{prefix}-first-start")
}

/// Starts an honest validator of `genesis` with key `signer`. `peers` names the validators to
/// the block broadcast and backfill (the p2p oracle's peer sets).
pub async fn start<E, P, B, S, R>(
    context: E,
    genesis: Genesis,
    signer: ValidatorSigner,
    config: ConsensusConfig,
    peers: P,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Validator, ChainError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    P: Provider<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey>,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
{
    start_with(context, genesis, signer, config, peers, blocker, channels, |honest| honest).await
}

/// Starts a validator whose proposals and verifications go through the application `wrap`
/// makes of the honest one (`start` passes the honest one itself; a test may wrap it in a
/// proposer that corrupts its blocks). Finalized blocks reach the honest application directly.
#[allow(clippy::too_many_arguments)]
pub async fn start_with<E, P, B, S, R, A>(
    context: E,
    genesis: Genesis,
    signer: ValidatorSigner,
    config: ConsensusConfig,
    peers: P,
    blocker: B,
    channels: Channels<S, R>,
    wrap: impl FnOnce(Marshaled) -> A + Send + 'static,
) -> Result<Validator, ChainError>
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + Supervisor,
    P: Provider<PublicKey = ValidatorKey>,
    B: Blocker<PublicKey = ValidatorKey>,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
    A: BlockApplication<E>,
{
    let me = crate::keys::public_key(&signer);
    let scheme = signing_scheme(&genesis, signer).ok_or(ChainError::NotAValidator)?;
    let (started, mailbox) = oneshot::channel();
    // Everything runs under one task, so that stopping it stops every part of the validator.
    let tasks = context.child("validator").spawn(move |context| async move {
        let marshal = match ordering::open(
            context.child("marshal"),
            &format!("{}-marshal", config.partition),
            scheme.clone(),
            genesis.block(),
        )
        .await
        {
            Ok(marshal) => marshal,
            Err(error) => {
                let ended = format!("marshal did not open: {error}");
                started.send_lossy(Err(error));
                return ended;
            }
        };
        let actor_config = ActorConfig {
            genesis: genesis.clone(),
            validator: me.clone(),
            log_partition: format!("{}-finalized", config.partition),
            log_blocks_per_section: config.log_blocks_per_section.max(1),
            snapshot_partition: snapshot_partition(&config.partition),
            evidence_partition: format!("{}-evidence", config.partition),
            snapshot_interval: config.snapshot_interval.clamp(1, crate::consensus::SNAPSHOT_INTERVAL_MAX),
            heartbeat: config.heartbeat,
            blocker: blocker.clone(),
            marshal_processed: marshal.processed,
        };
        // Peers' gossiped requests are decoded and their signatures checked beside the actor.
        let (requests, gossip) = channels.requests;
        let (checked, gossiped) = mpsc::channel(gossip::CHECKED_QUEUE_MAX);
        let (gossip_genesis, gossip_blocker) = (genesis.clone(), blocker.clone());
        // On a thread of its own: a check reads up to a megabyte, and it runs for good.
        let mut gossip_checker = context
            .child("gossip")
            .dedicated()
            .spawn(move |_| gossip::check_gossip(gossip, gossip_genesis, gossip_blocker, checked));
        let links = Links { requests, gossiped, snapshots: channels.snapshots };
        let marshal_mailbox = marshal.mailbox.clone();
        let (actor, mailbox) = Actor::new(context.child("application"), actor_config, links, marshal_mailbox.clone());
        let (_, mut marshal) = marshal.start(
            context.child("marshal_network"),
            me,
            peers,
            blocker.clone(),
            channels.blocks,
            channels.backfill,
            mailbox.marshaled(),
        );
        let mut application = actor.start();
        let inline =
            Inline::new(context.child("inline"), wrap(mailbox.marshaled()), marshal_mailbox, ordering::epochs());
        // The vote record hears of the highest certificate, for a validator that has no record of
        // its earlier votes (`votes.rs`, "Without a record").
        let heard = crate::votes::HighestCertified::default();
        let reporter = Reporters::from((Reporters::from((inline.clone(), mailbox.clone())), heard.clone()));
        let engine = Engine::new(
            context.child("consensus"),
            simplex_config(&genesis, scheme, blocker, inline, reporter, &config),
        );
        // Every vote goes through the vote record, which never sends one that conflicts with a
        // vote this validator sent before (`votes.rs`).
        let (votes, receive_votes) = channels.votes;
        // A snapshot means a finalized state, which this key voted for (or a restore of one),
        // except a re-founded chain's founding state (height 0) seeded for the chain's first
        // start, before any validator of it voted (`first_start_partition`). If a partition
        // cannot be read, the application stops on it; meanwhile, assume a state.
        let first_start =
            context.scan(&first_start_partition(&config.partition)).await.is_ok_and(|names| !names.is_empty());
        let holds_state = crate::application::snapshots::scan_heights(&context, &snapshot_partition(&config.partition))
            .await
            .map_or(true, |heights| heights.iter().any(|&height| height > 0 || !first_start));
        let partition = format!("{}-votes", config.partition);
        let (votes, mut record) =
            match crate::votes::start(context.child("votes"), partition, votes, holds_state, heard).await {
                Ok(started) => started,
                Err(error) => {
                    let ended = format!("the vote record did not open: {error}");
                    started.send_lossy(Err(error));
                    return ended;
                }
            };
        let mut consensus = engine.start((votes, receive_votes), channels.certificates, channels.resolver);
        started.send_lossy(Ok(mailbox));
        select! {
            result = &mut consensus => format!("consensus ended: {result:?}"),
            result = &mut application => format!("the application ended: {result:?}"),
            result = &mut marshal => format!("marshal ended: {result:?}"),
            result = &mut record => format!("the vote record ended: {result:?}"),
            result = &mut gossip_checker => format!("the gossip checker ended: {result:?}"),
        }
    });
    let mailbox = mailbox.await.map_err(|_| ChainError::Storage("the validator stopped while starting".into()))??;
    Ok(Validator { mailbox, tasks })
}
