//! `tally-client` end to end against a real cluster of four validators on loopback.
//!
//! The validators share one cluster (started once for this test binary); each test uses its
//! own range of ids. Validator 0 answers every submission 202 at once (its wait limit is 1 ms),
//! validator 1 answers every submission 429 (it lets no submission wait), validators 2 and 3
//! answer normally; the failover test stops validator 3, and the other three still finalize.

mod client_support;

use client_support::{Cluster, dead_url, test_options};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tally_chain::keys::{public_key, signer_from_seed};
use tally_chain::receipt::OutcomeReceipt;
use tally_chain::{Genesis, Request, RequestKind};
use tally_client::{Client, ClientError, ClientOptions, EventResults};
use tally_ledger::{
    Account, AccountFilter, AccountFilterFlags, AccountFlags, CreateAccountStatus, CreateTransferStatus, QueryFilter,
    Transfer, TransferFlags,
};
use tally_node::genesis_file::GenesisFile;

const PENDING: usize = 0;
const BUSY: usize = 1;
const NORMAL: usize = 2;
const STOPPED_LATER: usize = 3;

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        Cluster::start_shared("client_sdk", 4, |index, config| match index {
            PENDING => config.wait = Duration::from_millis(1),
            BUSY => config.waiting_requests_max = 0,
            _ => {}
        })
    })
}

/// A client of the given validators (by index), in that order.
fn client_of(indexes: &[usize]) -> Client {
    let cluster = cluster();
    cluster.client(&indexes.iter().map(|index| cluster.urls[*index].clone()).collect::<Vec<_>>())
}

fn account(id: u128) -> Account {
    Account { id, ledger: 1, code: 10, ..Account::default() }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        ..Transfer::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_look_up_and_query() {
    let client = client_of(&[NORMAL]);
    let base = 1_000_000;
    let history = Account { flags: AccountFlags::HISTORY, user_data_64: 77, ..account(base + 1) };
    let outcome = client.create_accounts(&[history, account(base + 2)]).await.unwrap();
    assert_eq!(outcome.requests.len(), 1);
    assert!(outcome.height() > 0);
    assert!(outcome.results.iter().all(|result| result.status == CreateAccountStatus::Created), "{outcome:?}");

    let transfers = [transfer(base + 10, base + 1, base + 2, 30), transfer(base + 11, base + 2, base + 1, 5)];
    let outcome = client.create_transfers(&transfers).await.unwrap();
    assert!(outcome.results.iter().all(|result| result.status == CreateTransferStatus::Created), "{outcome:?}");

    let found = client.lookup_account(base + 1).await.unwrap().expect("the account exists");
    assert_eq!((found.debits_posted, found.credits_posted, found.user_data_64), (30, 5, 77));
    assert!(found.timestamp > 0);
    assert_eq!(client.lookup_account(base + 99).await.unwrap(), None);
    let accounts = client.lookup_accounts(&[base + 2, base + 99, base + 1]).await.unwrap();
    assert_eq!(accounts.iter().map(|account| account.id).collect::<Vec<_>>(), [base + 2, base + 1]);

    assert_eq!(client.lookup_transfer(base + 10).await.unwrap().expect("exists").amount, 30);
    assert_eq!(client.lookup_transfer(base + 12).await.unwrap(), None);
    assert_eq!(client.lookup_transfers(&[base + 11]).await.unwrap()[0].debit_account_id, base + 2);

    let filter = AccountFilter {
        account_id: base + 1,
        limit: 10,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    let listed = client.get_account_transfers(&filter).await.unwrap();
    assert_eq!(listed.iter().map(|transfer| transfer.id).collect::<Vec<_>>(), [base + 10, base + 11]);
    let debits_only = AccountFilter { flags: AccountFilterFlags::DEBITS, ..filter };
    assert_eq!(client.get_account_transfers(&debits_only).await.unwrap().len(), 1);
    let balances = client.get_account_balances(&filter).await.unwrap();
    assert_eq!(balances.len(), 2);
    assert_eq!((balances[1].debits_posted, balances[1].credits_posted), (30, 5));

    let query = QueryFilter { user_data_64: 77, ledger: 1, limit: 10, ..QueryFilter::default() };
    let matching = client.query_accounts(&query).await.unwrap();
    assert_eq!(matching.iter().map(|account| account.id).collect::<Vec<_>>(), [base + 1]);
    let query = QueryFilter { ledger: 1, code: 1, limit: 8_000, ..QueryFilter::default() };
    let all = client.query_transfers(&query).await.unwrap();
    assert!(all.iter().any(|transfer| transfer.id == base + 11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_come_back_as_the_ledgers_enums() {
    let client = client_of(&[NORMAL]);
    let base = 2_000_000;
    let limited = Account { flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS, ..account(base + 1) };
    let outcome = client
        .create_accounts(&[limited, account(base + 2), Account { ledger: 0, ..account(base + 3) }])
        .await
        .unwrap();
    let statuses: Vec<_> = outcome.results.iter().map(|result| result.status).collect();
    assert_eq!(
        statuses,
        [CreateAccountStatus::Created, CreateAccountStatus::Created, CreateAccountStatus::LedgerMustNotBeZero]
    );
    let again = client.create_accounts(&[account(base + 2)]).await.unwrap();
    assert_eq!(again.results[0].status, CreateAccountStatus::Exists);

    let linked = Transfer { flags: TransferFlags::LINKED, ..transfer(base + 20, base + 2, base + 1, 10) };
    let outcome = client
        .create_transfers(&[
            transfer(base + 10, base + 1, base + 2, 1),
            linked,
            transfer(base + 21, base + 2, base + 2, 10),
            transfer(base + 30, base + 2, base + 404, 1),
        ])
        .await
        .unwrap();
    let statuses: Vec<_> = outcome.results.iter().map(|result| result.status).collect();
    assert_eq!(
        statuses,
        [
            CreateTransferStatus::ExceedsCredits,
            CreateTransferStatus::LinkedEventFailed,
            CreateTransferStatus::AccountsMustBeDifferent,
            CreateTransferStatus::CreditAccountNotFound,
        ]
    );
    // A transient failure is remembered: the same id never succeeds later.
    let retried = client.create_transfers(&[transfer(base + 10, base + 1, base + 2, 1)]).await.unwrap();
    assert_eq!(retried.results[0].status, CreateTransferStatus::IdAlreadyFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_id_applies_once() {
    let cluster = cluster();
    let base = 3_000_000;
    let client = client_of(&[NORMAL]);
    client.create_accounts(&[account(base + 1), account(base + 2)]).await.unwrap();

    let request_id = 0xfeed_0000_0000_0000_0000_0000_0000_0001u128 + base;
    let payment = [transfer(base + 10, base + 1, base + 2, 40)];
    let first = client.create_transfers_with_id(request_id, &payment).await.unwrap();
    assert_eq!(first.results[0].status, CreateTransferStatus::Created);
    assert_eq!(first.requests[0].request_id, request_id);

    // The same request again, through another validator (which follows it through 202s): the
    // recorded outcome, not a second application.
    let other = cluster.client(&[cluster.urls[PENDING].clone()]);
    let second = other.create_transfers_with_id(request_id, &payment).await.unwrap();
    assert_eq!(second, first, "a retry answers the first outcome");
    let third = client.create_transfers_with_id(request_id, &payment).await.unwrap();
    assert_eq!(third, first);
    assert_eq!(client.lookup_account(base + 2).await.unwrap().unwrap().credits_posted, 40, "applied once");

    // A new id for the same transfer is a new request: the ledger answers that it exists.
    let fresh = client.create_transfers(&payment).await.unwrap();
    assert_eq!(fresh.results[0].status, CreateTransferStatus::Exists);
    assert_ne!(fresh.requests[0].request_id, request_id);
    assert_eq!(client.lookup_account(base + 2).await.unwrap().unwrap().credits_posted, 40);

    // The same id with other events is refused as a conflict, through either validator, and
    // never applies.
    let other_events = [transfer(base + 11, base + 1, base + 2, 1)];
    let signer = cluster.signer();
    let request =
        Request::create_transfers(cluster.chain_id, request_id, tally_chain::default_expiry(), &signer, &other_events)
            .unwrap();
    for sender in [&client, &other] {
        let error = sender.submit(&request).await.unwrap_err();
        assert!(matches!(error, ClientError::RequestIdConflict { request_id: id, .. } if id == request_id), "{error}");
        assert_eq!(error.code(), "request_id_conflict");
    }
    let error = client.create_transfers_with_id(request_id, &other_events).await.unwrap_err();
    assert_eq!(error.code(), "request_id_conflict", "{error}");
    assert_eq!(client.lookup_transfer(base + 11).await.unwrap(), None, "the second body never applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_request_is_followed_until_final() {
    // Validator 0 answers every submission 202 at once; the client must ask for the outcome
    // until the request is final.
    let client = client_of(&[PENDING]);
    let base = 4_000_000;
    let outcome = client.create_accounts(&[account(base + 1)]).await.unwrap();
    assert_eq!(outcome.results[0].status, CreateAccountStatus::Created);
    assert!(client.lookup_account(base + 1).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_past_dead_busy_and_stopped_validators() {
    let cluster = cluster();
    let base = 5_000_000;

    // Nothing listens at the first URL.
    let client = cluster.client(&[dead_url(), cluster.urls[NORMAL].clone()]);
    let outcome = client.create_accounts(&[account(base + 1), account(base + 2)]).await.unwrap();
    assert!(outcome.results.iter().all(|result| result.status == CreateAccountStatus::Created));
    assert!(client.lookup_account(base + 2).await.unwrap().is_some());

    // The first validator is busy (429 with Retry-After).
    let client = client_of(&[BUSY, NORMAL]);
    let outcome = client.create_transfers(&[transfer(base + 10, base + 1, base + 2, 3)]).await.unwrap();
    assert_eq!(outcome.results[0].status, CreateTransferStatus::Created);

    // The first validator stopped (a crash, as far as the client can tell); the cluster goes
    // on with three of four.
    let client = client_of(&[STOPPED_LATER, NORMAL]);
    client.create_accounts(&[account(base + 3)]).await.unwrap();
    cluster.stop(STOPPED_LATER);
    let outcome = client.create_transfers(&[transfer(base + 11, base + 1, base + 3, 4)]).await.unwrap();
    assert_eq!(outcome.results[0].status, CreateTransferStatus::Created);
    assert_eq!(client.lookup_account(base + 3).await.unwrap().unwrap().credits_posted, 4);
    let status = client.status().await.unwrap();
    assert_eq!(status.chain_id, cluster.chain_id);
    assert!(status.height >= outcome.height());
    let each = client.status_of_each().await;
    assert_eq!(each[0].1.as_ref().unwrap_err().code(), "unavailable");
    assert_eq!(each[1].1.as_ref().unwrap().validators.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unknown_signers_are_refused_with_stable_codes() {
    let cluster = cluster();
    let client = client_of(&[NORMAL]);
    let base = 6_000_000;

    // The genesis client's key, with a signature made by another key.
    let forger = tally_client::generate_signer();
    let forged =
        Request::create_accounts(cluster.chain_id, 1, tally_chain::default_expiry(), &forger, &[account(base + 1)])
            .unwrap();
    let claimed = Request::from_parts(
        RequestKind::CreateAccounts,
        1,
        forged.expires_ns(),
        public_key(&cluster.signer()),
        forged.body().to_vec(),
        forged.signature().clone(),
    )
    .unwrap();
    let started = Instant::now();
    let error = client.submit(&claimed).await.unwrap_err();
    assert_eq!(error.code(), "bad_signature", "{error}");
    assert!(matches!(error, ClientError::Api { status: 401, .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "a refusal is final, not retried");

    // Signed for another chain: the same refusal.
    let wrong_chain =
        Client::with_options([cluster.urls[NORMAL].clone()], cluster.chain_id + 1, cluster.signer(), test_options())
            .unwrap();
    let error = wrong_chain.create_accounts(&[account(base + 2)]).await.unwrap_err();
    assert_eq!(error.code(), "bad_signature", "{error}");

    // A key the genesis does not list.
    let stranger =
        Client::with_options([cluster.urls[NORMAL].clone()], cluster.chain_id, forger, test_options()).unwrap();
    let error = stranger.create_accounts(&[account(base + 3)]).await.unwrap_err();
    assert_eq!(error.code(), "unknown_client", "{error}");
    assert!(matches!(error, ClientError::Api { status: 403, .. }), "{error}");

    assert_eq!(client.lookup_accounts(&[base + 1, base + 2, base + 3]).await.unwrap(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_longer_than_a_request_is_split_between_linked_chains() {
    // Requests of at most 4 events here (8,190 by default, the chain's limit): the same code
    // path, without making the debug-build validators execute megabyte blocks.
    let cluster = cluster();
    let options = ClientOptions { request_events_max: 4, ..test_options() };
    let client =
        Client::with_options([cluster.urls[NORMAL].clone()], cluster.chain_id, cluster.signer(), options).unwrap();
    let base = 7_000_000;
    // Ten accounts; events 2-4 form one linked chain across the first cut at 4.
    let accounts: Vec<Account> = (0..10u128)
        .map(|index| Account {
            flags: if (2..4).contains(&index) { AccountFlags::LINKED } else { AccountFlags::NONE },
            ..account(base + index + 1)
        })
        .collect();
    let outcome = client.create_accounts(&accounts).await.unwrap();
    let ranges: Vec<_> = outcome.requests.iter().map(|request| request.events.clone()).collect();
    assert_eq!(ranges, [0..2, 2..6, 6..10]);
    assert_eq!(outcome.results.len(), 10);
    assert!(outcome.results.iter().all(|result| result.status == CreateAccountStatus::Created), "{outcome:?}");
    assert!(outcome.requests.windows(2).all(|pair| pair[0].height <= pair[1].height));
    assert_eq!(outcome.height(), outcome.requests[2].height);
    let ids: Vec<u128> = accounts.iter().map(|account| account.id).collect();
    assert_eq!(client.lookup_accounts(&ids).await.unwrap().len(), 10);

    // A linked chain as a whole: had it been cut, its pieces would fail as
    // `linked_event_chain_open`.
    let transfers: Vec<Transfer> = (0..6u128)
        .map(|index| Transfer {
            flags: if index < 4 { TransferFlags::LINKED } else { TransferFlags::NONE },
            ..transfer(base + 100 + index, base + 1, base + 2, 1)
        })
        .collect();
    let outcome = client.create_transfers(&transfers).await.unwrap();
    let ranges: Vec<_> = outcome.requests.iter().map(|request| request.events.clone()).collect();
    assert_eq!(ranges, [0..4, 4..6], "a chain longer than a request is cut at the limit");
    assert!(outcome.results[..4].iter().all(|result| result.status != CreateTransferStatus::Created));
    assert_eq!(outcome.results[3].status, CreateTransferStatus::LinkedEventChainOpen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_receipt_carries_the_kind_of_its_request() {
    let cluster = cluster();
    let client = client_of(&[NORMAL]);
    let request = Request::create_accounts(
        cluster.chain_id,
        8_000_000,
        tally_chain::default_expiry(),
        &cluster.signer(),
        &[account(8_000_001)],
    )
    .unwrap();
    let receipt = client.submit(&request).await.unwrap();
    assert_eq!(receipt.request_id, 8_000_000);
    match receipt.results {
        EventResults::Accounts(results) => assert_eq!(results[0].status, CreateAccountStatus::Created),
        EventResults::Transfers(_) => panic!("an accounts request answers account results"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifying_client_takes_only_outcomes_a_quorum_signed() {
    let cluster = cluster();
    let genesis = GenesisFile::load(&cluster.files.genesis).unwrap().genesis().clone();
    // Validator 0 answers the submission 202 at once: the client follows it, then proves it.
    let client = client_of(&[PENDING, NORMAL]).verifying(genesis.clone());
    let outcome = client.create_accounts_with_id(9_000_000, &[account(9_000_001)]).await.unwrap();
    assert_eq!(outcome.results[0].status, CreateAccountStatus::Created);
    let request = &outcome.requests[0];
    let proven = request.proven.as_ref().expect("a verifying client proves every outcome");
    assert_eq!((proven.height, proven.validators), (request.height, 4));
    assert!(proven.signers >= 3, "a quorum of four");
    let receipt = OutcomeReceipt::decode(&proven.receipt, &genesis).unwrap();
    assert_eq!(receipt.verify(&genesis).unwrap().height, request.height);
    assert_eq!(receipt.key.id, 9_000_000);

    // A lying validator first: it swallows the request, answers it "final" with results of its
    // own, and serves the receipt of another request. The client takes none of it: it passes
    // over the receipt, gives the request to the next validator, and returns what that one's
    // receipt proves.
    let liar = lying_validator(hex_text(&proven.receipt));
    let client = Client::with_options(
        [liar.as_str(), cluster.urls[NORMAL].as_str()],
        cluster.chain_id,
        cluster.signer(),
        test_options(),
    )
    .unwrap()
    .verifying(genesis.clone());
    let outcome = client.create_accounts_with_id(9_000_004, &[account(9_000_005)]).await.unwrap();
    assert_eq!(outcome.results[0].status, CreateAccountStatus::Created);
    let proven = outcome.requests[0].proven.as_ref().expect("proven by the honest validator's receipt");
    let receipt = OutcomeReceipt::decode(&proven.receipt, &genesis).unwrap();
    assert_eq!(receipt.key.id, 9_000_004);

    // Checked against another chain's validators, no receipt verifies: the error names each
    // validator and says why, and the client does not take the answer.
    let others = (0..4).map(|seed| public_key(&signer_from_seed(9_000 + seed))).collect();
    let impostor =
        Genesis::new(cluster.chain_id, others, vec![public_key(&cluster.signer())], genesis.timestamp_ns()).unwrap();
    let client = client_of(&[NORMAL]).verifying(impostor);
    match client.create_accounts_with_id(9_000_002, &[account(9_000_003)]).await {
        Err(error @ ClientError::Unverified { .. }) => {
            assert_eq!(error.code(), "unverified");
            let message = error.to_string();
            assert!(message.starts_with("unverified: ") && message.contains(&cluster.urls[NORMAL]), "{message}");
        }
        other => panic!("an outcome no quorum of these validators signed was taken: {other:?}"),
    }
}

fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A validator that lies: it answers every submission 200 with results of its own making and
/// every receipt route with `receipt_hex` (another request's receipt), and keeps nothing.
fn lying_validator(receipt_hex: String) -> String {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = if request_line.contains("/receipt") {
                format!(r#"{{"receipt": "{receipt_hex}"}}"#)
            } else {
                String::from(r#"{"results": [{"index": 0, "status": "exists", "timestamp": "1"}]}"#)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifying_client_reads_only_what_a_quorum_signed_and_reads_its_own_writes() {
    let cluster = cluster();
    let genesis = GenesisFile::load(&cluster.files.genesis).unwrap().genesis().clone();
    let client = client_of(&[NORMAL, STOPPED_LATER]).verifying(genesis.clone());
    let history = Account { flags: tally_ledger::AccountFlags::HISTORY, ..account(9_100_001) };
    client.create_accounts(&[history, account(9_100_002)]).await.unwrap();
    let written = client.create_transfers(&[transfer(9_100_010, 9_100_001, 9_100_002, 40)]).await.unwrap();
    let seen = client.height_seen();
    assert_eq!(seen, written.height(), "the write's proven height");

    // Its own write is there, in a state no older than the write, proven by a quorum.
    let (accounts, proven) = client.lookup_accounts_proven(&[9_100_002, 9_100_001, 9_100_002]).await.unwrap();
    let proven = proven.expect("a verifying client proves reads");
    assert!(proven.height >= seen && proven.signers >= 3 && proven.validators == 4, "{proven:?}");
    assert_eq!(accounts.iter().map(|account| account.id).collect::<Vec<_>>(), [9_100_002, 9_100_001]);
    assert_eq!((accounts[0].credits_posted, accounts[1].debits_posted), (40, 40));
    let receipt = tally_chain::state_receipt::StateReceipt::decode(&proven.receipt, &genesis).unwrap();
    assert_eq!(receipt.verify(&genesis).unwrap().height, proven.height);

    let transfer = client.lookup_transfer(9_100_010).await.unwrap().expect("created");
    assert_eq!(transfer.amount, 40);
    let filter = tally_ledger::AccountFilter {
        account_id: 9_100_001,
        limit: 10,
        flags: tally_ledger::AccountFilterFlags::DEBITS,
        ..tally_ledger::AccountFilter::default()
    };
    let (transfers, proven) = client.get_account_transfers_proven(&filter).await.unwrap();
    assert_eq!(transfers.iter().map(|transfer| transfer.id).collect::<Vec<_>>(), [9_100_010]);
    assert!(proven.is_some());
    // Its balance history, each entry proven.
    let (balances, proven) = client.get_account_balances_proven(&filter).await.unwrap();
    assert_eq!(balances.iter().map(|balance| balance.debits_posted).collect::<Vec<_>>(), [40]);
    let receipt = tally_chain::state_receipt::StateReceipt::decode(&proven.unwrap().receipt, &genesis).unwrap();
    assert_eq!(receipt.proof.balances[0].1.transfer_id, 9_100_010);

    // An id no validator holds is absent on the word of f + 1 = 2 of them.
    assert_eq!(client.lookup_account(9_100_999).await.unwrap(), None);
    assert_eq!(client.lookup_accounts(&[9_100_999, 9_100_001]).await.unwrap().len(), 1);
    // Knowing one validator only, its word is not enough to take an id as absent.
    match client_of(&[NORMAL]).verifying(genesis.clone()).lookup_transfer(9_100_998).await {
        Err(error @ ClientError::Unverified { .. }) => {
            assert!(error.to_string().contains("2 must agree that an id is absent"), "{error}");
        }
        other => panic!("one validator's word was taken for an absence: {other:?}"),
    }

    // Against another chain's validators nothing verifies, and nothing is returned.
    let others = (0..4).map(|seed| public_key(&signer_from_seed(9_100 + seed))).collect();
    let impostor =
        Genesis::new(cluster.chain_id, others, vec![public_key(&cluster.signer())], genesis.timestamp_ns()).unwrap();
    match client_of(&[NORMAL]).verifying(impostor).lookup_account(9_100_001).await {
        Err(error @ ClientError::Unverified { .. }) => {
            assert!(error.to_string().contains(&cluster.urls[NORMAL]), "{error}");
        }
        other => panic!("an account no quorum of these validators signed for was taken: {other:?}"),
    }
}
