//! Four validators on the real runtime: tokio, authenticated and encrypted TCP on loopback, and
//! files on disk. Clients submit transfers; one validator is stopped abruptly mid-load and
//! restarted from its files; it must rejoin with equal digests and every request's outcome.

use commonware_cryptography::ChaCha20Poly1305;
use commonware_p2p::{Address, AddressableManager as _, authenticated::lookup};
use commonware_runtime::{Clock as _, Handle, Quota, Runner as _, Supervisor as _, tokio as runtime};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;
use tally_chain::application::History;
use tally_chain::consensus::ConsensusConfig;
use tally_chain::constants::MESSAGE_SIZE_MAX;
use tally_chain::keys::{ClientSigner, ValidatorKey, ValidatorSigner, public_key, signer_from_seed};
use tally_chain::validator::{self, Channels, Validator};
use tally_chain::{ChainError, Genesis, Mailbox, Request, RequestResult};
use tally_ledger::{Account, CreateAccountStatus, CreateTransferStatus, Transfer};

const CHAIN_ID: u64 = 11;
const VALIDATORS: u64 = 4;
const ACCOUNTS: u128 = 4;
const ROUNDS: u128 = 10;
/// Wall-clock time the whole test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// Loopback ports that were free a moment ago.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback")).collect();
    listeners.iter().map(|listener| listener.local_addr().unwrap().port()).collect()
}

/// A running validator and its network.
struct Node {
    validator: Validator,
    network: Handle<()>,
}

async fn start_node(
    context: &runtime::Context,
    index: usize,
    signer: &ValidatorSigner,
    genesis: &Genesis,
    peers: &[(ValidatorKey, SocketAddr)],
) -> Node {
    let listen = peers[index].1;
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
        listen,
        NZUsize!(VALIDATORS as usize),
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
    let network = network.start();
    let validator = validator::start(
        context.child("validator").with_attribute("index", index),
        genesis.clone(),
        signer.clone(),
        ConsensusConfig {
            snapshot_interval: SNAPSHOT_INTERVAL,
            ..ConsensusConfig::local(format!("tcp-validator-{index}"))
        },
        oracle.clone(),
        oracle,
        channels,
    )
    .await
    .expect("a genesis validator");
    Node { validator, network }
}

/// Finalized heights between snapshots: small, so that the restart below starts from one.
const SNAPSHOT_INTERVAL: u64 = 4;

async fn submit(context: &runtime::Context, mailbox: &Mailbox, request: Request) {
    loop {
        match mailbox.submit(request.clone().verify(CHAIN_ID).unwrap()).await {
            Ok(()) | Err(ChainError::DuplicateRequest { .. }) => return,
            Err(ChainError::Busy) => context.sleep(Duration::from_millis(50)).await,
            Err(error) => panic!("request {} refused: {error}", request.id()),
        }
    }
}

fn run(storage: PathBuf) {
    let config = runtime::Config::new().with_storage_directory(storage);
    runtime::Runner::new(config).start(|context| async move {
        let signers: Vec<ValidatorSigner> = (0..VALIDATORS).map(|index| signer_from_seed(500 + index)).collect();
        let keys: Vec<ValidatorKey> = signers.iter().map(public_key).collect();
        let client: ClientSigner = signer_from_seed(900);
        let genesis = Genesis::new(CHAIN_ID, keys.clone(), vec![public_key(&client)], 0).unwrap();
        let ports = free_ports(VALIDATORS as usize);
        let peers: Vec<(ValidatorKey, SocketAddr)> = keys
            .iter()
            .zip(&ports)
            .map(|(key, port)| (key.clone(), SocketAddr::from((Ipv4Addr::LOCALHOST, *port))))
            .collect();

        let mut nodes = Vec::new();
        for (index, signer) in signers.iter().enumerate() {
            nodes.push(start_node(&context, index, signer, &genesis, &peers).await);
        }

        let accounts: Vec<Account> =
            (1..=ACCOUNTS).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
        let opening = Request::create_accounts(CHAIN_ID, 1, tally_chain::default_expiry(), &client, &accounts).unwrap();
        let mut requests = vec![opening.key()];
        submit(&context, &nodes[0].validator.mailbox, opening).await;
        while nodes[0].validator.mailbox.outcome(requests[0].clone()).await.ok().flatten().is_none() {
            context.sleep(Duration::from_millis(50)).await;
        }

        let crashed = 2;
        let mut height_at_crash = 0;
        for round in 0..ROUNDS {
            if round == 3 {
                height_at_crash = nodes[crashed].validator.mailbox.status().await.unwrap().finalized_height;
                nodes[crashed].validator.stop();
                nodes[crashed].network.abort();
            }
            if round == 6 {
                nodes[crashed] = start_node(&context, crashed, &signers[crashed], &genesis, &peers).await;
                let status = nodes[crashed].validator.mailbox.status().await.unwrap();
                assert!(status.finalized_height >= height_at_crash, "restart lost finalized blocks: {status:?}");
                println!(
                    "tcp: validator {crashed} crashed at height {height_at_crash}, restarted at {}",
                    status.finalized_height
                );
                if height_at_crash >= SNAPSHOT_INTERVAL {
                    let history = nodes[crashed].validator.mailbox.history().await.unwrap();
                    assert!(history.base > 0, "the restart did not start from its snapshot");
                }
            }
            let id = 100 + round;
            let transfers: Vec<Transfer> = (0..10)
                .map(|offset| Transfer {
                    id: id * 100 + offset,
                    debit_account_id: (offset % ACCOUNTS) + 1,
                    credit_account_id: ((offset + 1) % ACCOUNTS) + 1,
                    amount: 7,
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                })
                .collect();
            let request =
                Request::create_transfers(CHAIN_ID, id, tally_chain::default_expiry(), &client, &transfers).unwrap();
            requests.push(request.key());
            let mut through = round as usize % nodes.len();
            if (3..6).contains(&round) && through == crashed {
                through = (through + 1) % nodes.len();
            }
            submit(&context, &nodes[through].validator.mailbox, request).await;
            context.sleep(Duration::from_millis(100)).await;
        }

        for node in &nodes {
            for key in &requests {
                while node.validator.mailbox.outcome(key.clone()).await.ok().flatten().is_none() {
                    context.sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let mut histories = Vec::new();
        for node in &nodes {
            histories.push(node.validator.mailbox.history().await.unwrap());
            for key in &requests {
                let outcome = node.validator.mailbox.outcome(key.clone()).await.unwrap().unwrap();
                match outcome.result {
                    RequestResult::Accounts(results) => {
                        assert!(results.iter().all(|result| result.status == CreateAccountStatus::Created))
                    }
                    RequestResult::Transfers(results) => {
                        assert!(results.iter().all(|result| result.status == CreateTransferStatus::Created))
                    }
                    RequestResult::Refused(error) => panic!("refused batch: {error}"),
                }
            }
        }
        let common = histories.iter().map(History::height).min().unwrap();
        for history in &histories[1..] {
            assert!(history.agrees_with(&histories[0]), "validators disagree");
        }
        println!("tcp: {common} blocks finalized by all four validators, {} requests", requests.len());
    });
}

#[test]
fn four_validators_over_tcp_survive_a_restart() {
    let storage = std::env::temp_dir().join(format!("tally-chain-tcp-{}", std::process::id()));
    let (done, finished) = mpsc::channel();
    let worker_storage = storage.clone();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| run(worker_storage));
        let _ = done.send(result.is_ok());
    });
    let passed = finished.recv_timeout(TEST_TIMEOUT).expect("the cluster did not finish in time");
    let _ = std::fs::remove_dir_all(&storage);
    assert!(passed, "the cluster run panicked (see its output above)");
}
