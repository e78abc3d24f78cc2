//! What the chain's cluster tests share: a validator started on the simulated network.

use commonware_p2p::simulated;
use commonware_runtime::{Quota, Supervisor as _, deterministic};
use commonware_utils::NZU32;
use tally_chain::Genesis;
use tally_chain::consensus::ConsensusConfig;
use tally_chain::keys::{ValidatorKey, ValidatorSigner, public_key};
use tally_chain::validator::{self, Channels, Validator};

/// Starts validator `index` with `config` (its storage partitions, reused on restart, are
/// named by `config.partition`).
pub async fn start_validator(
    context: &deterministic::Context,
    oracle: &simulated::Oracle<ValidatorKey, deterministic::Context>,
    genesis: &Genesis,
    signer: &ValidatorSigner,
    index: usize,
    config: ConsensusConfig,
) -> Validator {
    let control = oracle.control(public_key(signer));
    let quota = Quota::per_second(NZU32!(10_000));
    let channels = Channels::register_async(async |id| control.register(id, quota).await.unwrap()).await;
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
