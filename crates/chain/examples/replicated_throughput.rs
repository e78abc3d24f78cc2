//! End-to-end throughput of a replicated cluster: four validators in one process on Commonware's
//! tokio runtime, authenticated and encrypted TCP on loopback, files in a temporary directory.
//! A client submits full requests (8,190 transfers between random pairs of accounts) to every
//! validator in turn, keeping a window of requests in flight, and the run reports transfers
//! finalized and executed per second (every validator executes every block).
//!
//! ```sh
//! cargo run --release -p tally-chain --example replicated_throughput -- [requests] [accounts] [window]
//! ```
//!
//! `TALLY_MONITOR=1` prints each validator's height, view and mempool every two seconds.

use commonware_cryptography::ChaCha20Poly1305;
use commonware_p2p::{Address, AddressableManager as _, authenticated::lookup};
use commonware_runtime::{Clock as _, Quota, Runner as _, Spawner as _, Supervisor as _, tokio as runtime};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use tally_chain::consensus::ConsensusConfig;
use tally_chain::constants::{MESSAGE_SIZE_MAX, REQUEST_EVENTS_MAX};
use tally_chain::keys::{ValidatorKey, ValidatorSigner, public_key, signer_from_seed};
use tally_chain::validator::{self, Channels, Validator};
use tally_chain::{ChainError, Genesis, Request, RequestKey};
use tally_ledger::{Account, Transfer};

const CHAIN_ID: u64 = 21;
const VALIDATORS: usize = 4;

fn argument(index: usize, default: u64) -> u64 {
    std::env::args().nth(index).map_or(default, |value| value.parse().expect("a number"))
}

async fn start(
    context: &runtime::Context,
    index: usize,
    signer: &ValidatorSigner,
    genesis: &Genesis,
    peers: &[(ValidatorKey, SocketAddr)],
) -> Validator {
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: signer.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let config = lookup::Config::local(
        handshake,
        &genesis.consensus_namespace(),
        peers[index].1,
        NZUsize!(VALIDATORS),
        MESSAGE_SIZE_MAX as u32,
        NZUsize!(1_024),
    );
    let (mut network, mut oracle) =
        lookup::Network::new(context.child("network").with_attribute("index", index), config);
    let addresses: Vec<(ValidatorKey, Address)> =
        peers.iter().map(|(key, address)| (key.clone(), Address::from(*address))).collect();
    oracle.track(0, Map::try_from(addresses).expect("unique validators"));
    let quota = Quota::per_second(NZU32!(1_000));
    let channels = Channels::register(|id| network.register(id, quota));
    network.start();
    validator::start(
        context.child("validator").with_attribute("index", index),
        genesis.clone(),
        signer.clone(),
        ConsensusConfig::local(format!("throughput-{index}")),
        oracle.clone(),
        oracle,
        channels,
    )
    .await
    .expect("a genesis validator")
}

fn main() {
    let requests = argument(1, 40);
    let accounts = argument(2, 10_000) as u128;
    let window = argument(3, 8) as usize;
    let directory = std::env::temp_dir().join(format!("tally-throughput-{}", std::process::id()));
    let config = runtime::Config::new().with_storage_directory(directory.clone()).with_worker_threads(2);
    runtime::Runner::new(config).start(|context| async move {
        let signers: Vec<ValidatorSigner> = (0..VALIDATORS as u64).map(|index| signer_from_seed(700 + index)).collect();
        let keys: Vec<ValidatorKey> = signers.iter().map(public_key).collect();
        let client = signer_from_seed(990);
        let genesis = Genesis::new(CHAIN_ID, keys.clone(), vec![public_key(&client)], 0).unwrap();
        let ports: Vec<u16> = (0..VALIDATORS)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|listener| listener.local_addr().unwrap().port())
            .collect();
        let peers: Vec<(ValidatorKey, SocketAddr)> = keys
            .iter()
            .zip(&ports)
            .map(|(key, port)| (key.clone(), SocketAddr::from((Ipv4Addr::LOCALHOST, *port))))
            .collect();
        let mut validators = Vec::new();
        for (index, signer) in signers.iter().enumerate() {
            validators.push(start(&context, index, signer, &genesis, &peers).await);
        }

        // Accounts first, in full requests, each waited for.
        let mut id = 1u128;
        for chunk in (1..=accounts).collect::<Vec<_>>().chunks(REQUEST_EVENTS_MAX) {
            let batch: Vec<Account> =
                chunk.iter().map(|&id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
            let request =
                Request::create_accounts(CHAIN_ID, id, tally_chain::default_expiry(), &client, &batch).unwrap();
            validators[0].mailbox.submit(request.clone().verify(CHAIN_ID).unwrap()).await.unwrap();
            validators[0].mailbox.wait_outcome(request.key()).await.unwrap();
            id += 1;
        }

        let mut random = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random
        };
        if std::env::var_os("TALLY_MONITOR").is_some() {
            let mailboxes: Vec<_> = validators.iter().map(|validator| validator.mailbox.clone()).collect();
            context.child("monitor").spawn(move |context| async move {
                loop {
                    context.sleep(Duration::from_secs(2)).await;
                    let mut line = String::new();
                    for mailbox in &mailboxes {
                        if let Some(status) = mailbox.status().await {
                            line += &format!(
                                " [h{} v{} mempool {}]",
                                status.finalized_height, status.view, status.mempool_requests
                            );
                        }
                    }
                    eprintln!("{line}");
                }
            });
        }
        let started = Instant::now();
        let mut in_flight: VecDeque<RequestKey> = VecDeque::new();
        let mut transfer_id = 1u128;
        for round in 0..requests {
            let transfers: Vec<Transfer> = (0..REQUEST_EVENTS_MAX)
                .map(|_| {
                    let debit = u128::from(next()) % accounts + 1;
                    let credit = (debit + u128::from(next()) % (accounts - 1)) % accounts + 1;
                    transfer_id += 1;
                    Transfer {
                        id: transfer_id,
                        debit_account_id: debit,
                        credit_account_id: credit,
                        amount: 1,
                        ledger: 1,
                        code: 1,
                        ..Transfer::default()
                    }
                })
                .collect();
            let request =
                Request::create_transfers(CHAIN_ID, id, tally_chain::default_expiry(), &client, &transfers).unwrap();
            id += 1;
            let through = &validators[round as usize % VALIDATORS].mailbox;
            loop {
                match through.submit(request.clone().verify(CHAIN_ID).unwrap()).await {
                    Ok(()) => break,
                    Err(ChainError::Busy) => context.sleep(Duration::from_millis(5)).await,
                    Err(error) => panic!("refused: {error}"),
                }
            }
            in_flight.push_back(request.key());
            while in_flight.len() >= window {
                let key = in_flight.pop_front().unwrap();
                validators[0].mailbox.wait_outcome(key).await.expect("validator running");
            }
        }
        for key in in_flight {
            for validator in &validators {
                validator.mailbox.wait_outcome(key.clone()).await.expect("validator running");
            }
        }
        let elapsed = started.elapsed();
        let status = validators[0].mailbox.status().await.unwrap();
        let transfers = requests as f64 * REQUEST_EVENTS_MAX as f64;
        println!(
            "{VALIDATORS} validators, {accounts} accounts, {requests} requests of {REQUEST_EVENTS_MAX} transfers, \
             window {window}: {:.2} s, {:.0} transfers/s finalized, {} blocks, ledger digest {}",
            elapsed.as_secs_f64(),
            transfers / elapsed.as_secs_f64(),
            status.finalized_height,
            status.state_digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect::<String>(),
        );
    });
    let _ = std::fs::remove_dir_all(directory);
}
