//! What the chain's cluster tests share: a validator started on the simulated network.

use commonware_p2p::Sender;
use commonware_p2p::simulated::{self, Link, Network};
use commonware_runtime::{Quota, Supervisor as _, deterministic};
use commonware_utils::{NZU32, NZUsize};
use tally_chain::Genesis;
use tally_chain::consensus::ConsensusConfig;
use tally_chain::constants::MESSAGE_SIZE_MAX;
use tally_chain::keys::{ValidatorKey, ValidatorSigner, public_key};
use tally_chain::validator::{self, Channels, Validator};

/// The run's seed: `TALLY_SEED`, or `default` (each test file keeps the seed its tests were
/// tuned with).
#[allow(dead_code)]
pub fn seed(default: u64) -> u64 {
    std::env::var("TALLY_SEED").ok().map_or(default, |seed| seed.parse().expect("TALLY_SEED is a u64"))
}

/// The sender of one simulated link.
pub type SimulatedSender = simulated::Sender<ValidatorKey, deterministic::Context>;

/// Starts the simulated network of `validators`, every one linked to every other by `link`.
pub async fn start_network(
    context: &deterministic::Context,
    validators: &[ValidatorKey],
    link: Link,
) -> simulated::Oracle<ValidatorKey, deterministic::Context> {
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: MESSAGE_SIZE_MAX as u32,
            max_peers_per_set: NZUsize!(validators.len()),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        validators.to_vec(),
    )
    .await;
    network.start();
    for from in validators {
        for to in validators {
            if from != to {
                oracle.add_link(from.clone(), to.clone(), link.clone()).await.unwrap();
            }
        }
    }
    oracle
}

/// Starts validator `index` with `config` (its storage partitions, reused on restart, are
/// named by `config.partition`). (Each test binary compiles this module; one that wraps its
/// senders does not use this.)
#[allow(dead_code)]
pub async fn start_validator(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ValidatorKey, deterministic::Context>,
    genesis: &Genesis,
    signer: &ValidatorSigner,
    index: usize,
    config: ConsensusConfig,
) -> Validator {
    start_validator_wrapped(context, oracle, genesis, signer, index, config, |_, sender| sender).await
}

/// The same, with each link's sender wrapped by `wrap` (given the channel id): a test makes a
/// validator misbehave on one channel this way, without faulty code in the validator.
pub async fn start_validator_wrapped<S: Sender<PublicKey = ValidatorKey>>(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ValidatorKey, deterministic::Context>,
    genesis: &Genesis,
    signer: &ValidatorSigner,
    index: usize,
    config: ConsensusConfig,
    mut wrap: impl FnMut(u64, SimulatedSender) -> S,
) -> Validator {
    let control = oracle.control(public_key(signer));
    let quota = Quota::per_second(NZU32!(10_000));
    let channels = Channels::register_async(async |id| {
        let (sender, receiver) = control.register(id, quota).await.unwrap();
        (wrap(id, sender), receiver)
    })
    .await;
    validator::start(
        context.child("validator").with_attribute("index", index),
        genesis.clone(),
        signer.clone(),
        config,
        oracle.manager(),
        control.clone(),
        channels,
    )
    .await
    .unwrap()
}
