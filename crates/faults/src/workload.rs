//! Concurrent clients that move money through the cluster while the nemesis works, and record
//! every answer: single transfers, linked chains (some of which must fail as a whole), two-phase
//! transfers posted or voided later, transfers that must fail (`exceeds_credits`), retries of
//! acknowledged requests through other validators (which must answer the same), and reuses of
//! an acknowledged request id for other events (which must be refused and never apply).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_client::{Client, ClientError, ClientOptions, ClientSigner};
use tally_ledger::{Account, AccountFlags, CreateTransferResult, CreateTransferStatus, Transfer, TransferFlags};
use tally_sim::scenario::Draw;

/// Two ledgers of ordinary accounts, and per ledger one account that may not go negative.
pub const LEDGERS: [u32; 2] = [1, 2];
pub const ACCOUNTS_PER_LEDGER: u128 = 8;
/// An account id that never exists: a chain that credits it must fail as a whole.
const MISSING_ACCOUNT: u128 = 999_999;

pub fn account_ids() -> Vec<u128> {
    (1..=LEDGERS.len() as u128 * (ACCOUNTS_PER_LEDGER + 1)).collect()
}

fn ledger_accounts(ledger_index: usize) -> (Vec<u128>, u128) {
    let first = ledger_index as u128 * (ACCOUNTS_PER_LEDGER + 1) + 1;
    ((first..first + ACCOUNTS_PER_LEDGER).collect(), first + ACCOUNTS_PER_LEDGER)
}

/// The accounts every run starts with.
pub fn accounts() -> Vec<Account> {
    let mut accounts = Vec::new();
    for (index, ledger) in LEDGERS.iter().enumerate() {
        let (ordinary, guarded) = ledger_accounts(index);
        for id in ordinary {
            accounts.push(Account { id, ledger: *ledger, code: 10, ..Account::default() });
        }
        accounts.push(Account {
            id: guarded,
            ledger: *ledger,
            code: 10,
            flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            ..Account::default()
        });
    }
    accounts
}

/// How long after an acknowledgement the workload still retries the request or reuses its id:
/// well inside the twelve minutes the chain holds the name of a request the SDK signed.
const RETRY_WINDOW: std::time::Duration = std::time::Duration::from_secs(8 * 60);

/// What a request was meant to do, to judge its acknowledged results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Every event must be created.
    Succeed,
    /// No event may be created.
    Fail,
}

/// One request the clients sent, and what they were told.
#[derive(Debug, Clone)]
pub struct Record {
    pub request_id: u128,
    pub transfers: Vec<Transfer>,
    pub intent: Intent,
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Final: the height and each event's result.
    Acknowledged { height: u64, results: Vec<CreateTransferResult> },
    /// No final answer (a timeout, no validator reachable): it may or may not apply, once.
    Unknown(String),
    /// Included (a retry is refused as a duplicate) but no validator holds its outcome any more:
    /// each one rejoined from a snapshot above it. The transfers it created, with their
    /// timestamps, were read back from the ledger (every transfer id is sent in one request only).
    Recovered { created: Vec<(Transfer, u64)> },
}

/// What the clients saw that the cluster must never do.
#[derive(Debug, Default)]
pub struct Journal {
    pub records: Vec<Record>,
    pub violations: Vec<String>,
    /// Transfers sent under a reused request id: none may ever exist.
    pub never_applied: Vec<u128>,
    pub retries_same: u64,
    pub conflicts_refused: u64,
}

pub type SharedJournal = Arc<Mutex<Journal>>;

/// Client options for a cluster under faults: a request gives up after `submit_wait` and is
/// recorded as unknown, then resolved after the faults heal.
pub fn options(submit_wait: Duration) -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_millis(500),
        http_timeout: Duration::from_secs(8),
        submit_wait,
        read_wait: Duration::from_secs(10),
        backoff_max: Duration::from_millis(500),
        resubmit_interval: Duration::from_secs(2),
        ..ClientOptions::default()
    }
}

/// A client that prefers validator `first`, then the others in order.
pub fn client(urls: &[String], first: usize, chain_id: u64, signer: &ClientSigner, submit_wait: Duration) -> Client {
    let ordered: Vec<&String> = (0..urls.len()).map(|offset| &urls[(first + offset) % urls.len()]).collect();
    Client::with_options(ordered, chain_id, signer.clone(), options(submit_wait)).expect("valid client options")
}

/// Sends one request under `request_id` and records the answer.
pub async fn send(
    client: &Client,
    request_id: u128,
    transfers: Vec<Transfer>,
    intent: Intent,
    journal: &SharedJournal,
) -> Record {
    let answer = match client.create_transfers_with_id(request_id, &transfers).await {
        Ok(outcome) => Answer::Acknowledged { height: outcome.height(), results: outcome.results },
        Err(error) => Answer::Unknown(error.to_string()),
    };
    let record = Record { request_id, transfers, intent, answer };
    judge(&record, journal);
    journal.lock().unwrap().records.push(record.clone());
    record
}

/// Checks an acknowledged answer against the request's intent.
pub fn judge(record: &Record, journal: &SharedJournal) {
    let Answer::Acknowledged { results, .. } = &record.answer else { return };
    let created = results.iter().filter(|result| result.status == CreateTransferStatus::Created).count();
    let wrong = match record.intent {
        Intent::Succeed => created != results.len(),
        Intent::Fail => created != 0,
    };
    if wrong || results.len() != record.transfers.len() {
        journal.lock().unwrap().violations.push(format!(
            "request {:#x} meant to {:?} was answered {:?}",
            record.request_id,
            record.intent,
            results.iter().map(|result| result.status).collect::<Vec<_>>()
        ));
    }
}

/// One client's loop until `stop`: draws an operation, sends it, records the answer.
pub async fn run_client(
    number: u64,
    clients: Vec<Client>,
    mut draw: Draw,
    journal: SharedJournal,
    mut stop: tokio::sync::watch::Receiver<bool>,
    pause: Duration,
) {
    let mut transfer_next: u128 = 1;
    let mut new_transfer_id = move || {
        transfer_next += 1;
        (u128::from(number) << 64) | transfer_next
    };
    let mut pending: Vec<Transfer> = Vec::new();
    // Acknowledged requests with when they were acknowledged, for retries and reused ids. The
    // SDK signs each call with a fresh expiry (two minutes ahead) and the chain holds a request's
    // name ten minutes past its expiry: only within that window is a retry a repeat and a reused
    // id a conflict, so older ones are let go (`docs/API.md`, "Expiry").
    let mut acknowledged: Vec<(std::time::Instant, Record)> = Vec::new();
    while !*stop.borrow() {
        acknowledged.retain(|(at, _)| at.elapsed() < RETRY_WINDOW);
        let client = &clients[draw.index(clients.len())];
        let ledger_index = draw.index(LEDGERS.len());
        let ledger = LEDGERS[ledger_index];
        let (ordinary, guarded) = ledger_accounts(ledger_index);
        let pick_two = |draw: &mut Draw| {
            let debit = ordinary[draw.index(ordinary.len())];
            let mut credit = ordinary[draw.index(ordinary.len())];
            while credit == debit {
                credit = ordinary[draw.index(ordinary.len())];
            }
            (debit, credit)
        };
        let plain = |id, (debit, credit): (u128, u128), amount| Transfer {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount,
            ledger,
            code: 1,
            ..Transfer::default()
        };
        let request_id = tally_client::random_request_id();
        let choice = draw.index(100);
        match choice {
            // A single transfer.
            0..35 => {
                let transfer = plain(new_transfer_id(), pick_two(&mut draw), u128::from(draw.between(1, 100)));
                let record = send(client, request_id, vec![transfer], Intent::Succeed, &journal).await;
                acknowledged.extend(is_acknowledged(record).map(|record| (std::time::Instant::now(), record)));
            }
            // A linked chain; a third of them credit a missing account and must fail whole.
            35..55 => {
                let length = draw.between(2, 3) as usize;
                let mut chain: Vec<Transfer> = (0..length)
                    .map(|_| plain(new_transfer_id(), pick_two(&mut draw), u128::from(draw.between(1, 50))))
                    .collect();
                for transfer in &mut chain[..length - 1] {
                    transfer.flags = TransferFlags::LINKED;
                }
                let intent = if draw.chance(1, 3) {
                    let last = draw.index(length);
                    chain[last].credit_account_id = MISSING_ACCOUNT;
                    Intent::Fail
                } else {
                    Intent::Succeed
                };
                let record = send(client, request_id, chain, intent, &journal).await;
                acknowledged.extend(is_acknowledged(record).map(|record| (std::time::Instant::now(), record)));
            }
            // A pending transfer, resolved by a later operation.
            55..70 => {
                let mut transfer = plain(new_transfer_id(), pick_two(&mut draw), u128::from(draw.between(1, 100)));
                transfer.flags = TransferFlags::PENDING;
                let record = send(client, request_id, vec![transfer], Intent::Succeed, &journal).await;
                if matches!(record.answer, Answer::Acknowledged { .. }) {
                    pending.push(transfer);
                }
                acknowledged.extend(is_acknowledged(record).map(|record| (std::time::Instant::now(), record)));
            }
            // Post or void a pending transfer.
            70..80 if !pending.is_empty() => {
                let first = pending.swap_remove(draw.index(pending.len()));
                let flags = if draw.chance(1, 2) {
                    TransferFlags::POST_PENDING_TRANSFER
                } else {
                    TransferFlags::VOID_PENDING_TRANSFER
                };
                let resolve = Transfer {
                    id: new_transfer_id(),
                    pending_id: first.id,
                    amount: first.amount,
                    flags,
                    ..Transfer::default()
                };
                let record = send(client, request_id, vec![resolve], Intent::Succeed, &journal).await;
                acknowledged.extend(is_acknowledged(record).map(|record| (std::time::Instant::now(), record)));
            }
            // A transfer that must fail: the guarded account has no credits to spend.
            80..88 => {
                let transfer = plain(new_transfer_id(), (guarded, ordinary[0]), 1_000_000);
                send(client, request_id, vec![transfer], Intent::Fail, &journal).await;
            }
            // A retry of an acknowledged request through another validator: the same answer.
            88..96 if !acknowledged.is_empty() => {
                let first = acknowledged[draw.index(acknowledged.len())].1.clone();
                let other = &clients[draw.index(clients.len())];
                match other.create_transfers_with_id(first.request_id, &first.transfers).await {
                    Ok(outcome) => {
                        let again = Answer::Acknowledged { height: outcome.height(), results: outcome.results };
                        let mut journal = journal.lock().unwrap();
                        if again == first.answer {
                            journal.retries_same += 1;
                        } else {
                            journal.violations.push(format!(
                                "a retry of request {:#x} answered {again:?}, first {:?}",
                                first.request_id, first.answer
                            ));
                        }
                    }
                    // No answer in time is fine under faults; a final refusal of a retry is not.
                    Err(error) if no_answer(&error) => {}
                    Err(error) => journal
                        .lock()
                        .unwrap()
                        .violations
                        .push(format!("a retry of acknowledged request {:#x} was refused: {error}", first.request_id)),
                }
            }
            // The id of an acknowledged request reused for other events: refused, never applied.
            96..100 if !acknowledged.is_empty() => {
                let first = acknowledged[draw.index(acknowledged.len())].1.clone();
                let mut other = first.transfers.clone();
                for transfer in &mut other {
                    transfer.id = new_transfer_id();
                }
                match client.create_transfers_with_id(first.request_id, &other).await {
                    Err(ClientError::RequestIdConflict { .. }) => journal.lock().unwrap().conflicts_refused += 1,
                    Ok(outcome) => journal.lock().unwrap().violations.push(format!(
                        "request id {:#x} reused for other events was answered {:?}",
                        first.request_id, outcome.results
                    )),
                    // No answer in time: the suite checks later that the other events never applied.
                    Err(error) if no_answer(&error) => {}
                    Err(error) => journal.lock().unwrap().violations.push(format!(
                        "request id {:#x} reused for other events was refused with {error}, not request_id_conflict",
                        first.request_id
                    )),
                }
                journal.lock().unwrap().never_applied.extend(other.iter().map(|transfer| transfer.id));
            }
            _ => continue,
        }
        // After a request without an answer (the cluster down or cut in two), wait a little
        // longer: the SDK gives up at once when no validator answers at all.
        let last_unknown =
            journal.lock().unwrap().records.last().is_some_and(|record| matches!(record.answer, Answer::Unknown(_)));
        let pause = if last_unknown { pause + draw.millis(300, 1_000) } else { pause };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Whether an error only says no final answer came in time (which faults may cause).
fn no_answer(error: &ClientError) -> bool {
    matches!(error, ClientError::Unavailable { .. } | ClientError::NotFinal { .. })
}

fn is_acknowledged(record: Record) -> Option<Record> {
    matches!(record.answer, Answer::Acknowledged { .. }).then_some(record)
}
