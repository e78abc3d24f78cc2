//! What must hold after the faults heal, checked on every validator.

use crate::workload::{Answer, Journal, Record, account_ids};
use std::collections::HashMap;
use std::time::Duration;
use tally_client::Client;
use tally_ledger::{CreateTransferStatus, Transfer, TransferFlags};

/// One check's verdict.
#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &'static str, failures: Vec<String>, passed_detail: String) -> Self {
        let passed = failures.is_empty();
        let detail = if passed {
            passed_detail
        } else {
            let shown: Vec<&String> = failures.iter().take(5).collect();
            format!("{} failures, first: {shown:?}", failures.len())
        };
        Self { name, passed, detail }
    }
}

/// The balances the acknowledged results imply, per account:
/// (debits_pending, debits_posted, credits_pending, credits_posted).
type Balances = HashMap<u128, (u128, u128, u128, u128)>;

/// Replays every acknowledged, created transfer in the order of its timestamp.
pub fn model(records: &[Record]) -> Balances {
    let mut created: Vec<(u64, Transfer)> = Vec::new();
    for record in records {
        let Answer::Acknowledged { results, .. } = &record.answer else { continue };
        for (transfer, result) in record.transfers.iter().zip(results) {
            if result.status == CreateTransferStatus::Created {
                created.push((result.timestamp, *transfer));
            }
        }
    }
    created.sort_by_key(|(timestamp, _)| *timestamp);
    let by_id: HashMap<u128, Transfer> = created.iter().map(|(_, transfer)| (transfer.id, *transfer)).collect();
    let mut balances = Balances::new();
    for (_, transfer) in &created {
        if transfer.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || transfer.flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
        {
            let pending = by_id[&transfer.pending_id];
            let debit = balances.entry(pending.debit_account_id).or_default();
            debit.0 -= pending.amount;
            if transfer.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
                debit.1 += pending.amount;
            }
            let credit = balances.entry(pending.credit_account_id).or_default();
            credit.2 -= pending.amount;
            if transfer.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
                credit.3 += pending.amount;
            }
        } else if transfer.flags.contains(TransferFlags::PENDING) {
            balances.entry(transfer.debit_account_id).or_default().0 += transfer.amount;
            balances.entry(transfer.credit_account_id).or_default().2 += transfer.amount;
        } else {
            balances.entry(transfer.debit_account_id).or_default().1 += transfer.amount;
            balances.entry(transfer.credit_account_id).or_default().3 += transfer.amount;
        }
    }
    balances
}

/// Every validator at one finalized height has one state digest: compares the newest height
/// that all of them list among their recent blocks.
pub async fn one_state_digest(urls: &[String]) -> Check {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("an HTTP client");
    let mut failures = Vec::new();
    for _ in 0..30 {
        failures.clear();
        let mut lists = Vec::new();
        for url in urls {
            match http.get(format!("{url}/v1/blocks?limit=100")).send().await {
                Ok(response) => match response.json::<serde_json::Value>().await {
                    Ok(value) => lists.push(value["blocks"].as_array().cloned().unwrap_or_default()),
                    Err(error) => failures.push(format!("{url}: {error}")),
                },
                Err(error) => failures.push(format!("{url}: {error}")),
            }
        }
        if failures.is_empty() {
            let heights = |blocks: &Vec<serde_json::Value>| -> Vec<String> {
                blocks.iter().filter_map(|block| block["height"].as_str().map(str::to_string)).collect()
            };
            let common = heights(&lists[0])
                .into_iter()
                .filter(|height| lists.iter().all(|blocks| heights(blocks).contains(height)))
                .max_by_key(|height| height.parse::<u64>().unwrap_or(0));
            if let Some(height) = common {
                let digests: Vec<String> = lists
                    .iter()
                    .map(|blocks| {
                        let block = blocks.iter().find(|block| block["height"].as_str() == Some(&height)).unwrap();
                        block["state_digest"].as_str().unwrap_or_default().to_string()
                    })
                    .collect();
                if digests.iter().all(|digest| *digest == digests[0]) {
                    return Check::new(
                        "one state digest at one height",
                        Vec::new(),
                        format!("height {height}: {}…", &digests[0][..16]),
                    );
                }
                failures.push(format!("height {height}: digests {digests:?}"));
                break;
            }
            failures.push(String::from("no height is among every validator's recent blocks yet"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Check::new("one state digest at one height", failures, String::new())
}

/// Every acknowledged request answers the same outcome on every validator, every created
/// transfer exists there exactly as acknowledged, and nothing else was created.
pub async fn acknowledged_everywhere(
    urls: &[String],
    client_key: &str,
    journal: &Journal,
    clients: &[Client],
) -> Check {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client");
    let mut failures = Vec::new();
    let mut created: Vec<(u128, Transfer, u64)> = Vec::new();
    let mut absent: Vec<u128> = journal.never_applied.clone();
    let mut acknowledged = 0;
    for record in &journal.records {
        let Answer::Acknowledged { height, results } = &record.answer else {
            failures.push(format!("request {:#x} never got a final answer", record.request_id));
            continue;
        };
        acknowledged += 1;
        for (transfer, result) in record.transfers.iter().zip(results) {
            // Every transfer id is sent in one request only (retries resend that request).
            if result.status == CreateTransferStatus::Created {
                created.push((transfer.id, *transfer, result.timestamp));
            } else {
                absent.push(transfer.id);
            }
        }
        for url in urls {
            let path = format!("{url}/v1/requests/{client_key}/{}", record.request_id);
            match http.get(&path).send().await {
                Ok(response) if response.status().is_success() => {
                    let value: serde_json::Value = response.json().await.unwrap_or_default();
                    let statuses: Vec<&str> = value["results"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r["status"].as_str())
                        .collect();
                    let expected: Vec<&str> = results.iter().map(|result| result.status.name()).collect();
                    if value["height"].as_str() != Some(&height.to_string()) || statuses != expected {
                        failures.push(format!(
                            "{url}: request {:#x} answers height {} {statuses:?}, acknowledged height {height} {expected:?}",
                            record.request_id, value["height"]
                        ));
                    }
                }
                Ok(response) => {
                    failures.push(format!("{url}: request {:#x}: {}", record.request_id, response.status()))
                }
                Err(error) => failures.push(format!("{url}: request {:#x}: {error}", record.request_id)),
            }
        }
    }
    for (index, client) in clients.iter().enumerate() {
        for chunk in created.chunks(4_000) {
            let ids: Vec<u128> = chunk.iter().map(|(id, _, _)| *id).collect();
            match client.lookup_transfers(&ids).await {
                Ok(found) => {
                    let found: HashMap<u128, Transfer> =
                        found.into_iter().map(|transfer| (transfer.id, transfer)).collect();
                    for (id, sent, timestamp) in chunk {
                        match found.get(id) {
                            None => failures.push(format!("{}: acknowledged transfer {id:#x} is missing", urls[index])),
                            Some(stored) => {
                                // Posts and voids name their accounts through the pending transfer.
                                let resolves = sent.pending_id != 0;
                                let same_accounts = resolves
                                    || (stored.debit_account_id, stored.credit_account_id)
                                        == (sent.debit_account_id, sent.credit_account_id);
                                if stored.timestamp != *timestamp || stored.amount != sent.amount || !same_accounts {
                                    failures.push(format!(
                                        "{}: transfer {id:#x} is {stored:?}, acknowledged {sent:?} at {timestamp}",
                                        urls[index]
                                    ));
                                }
                            }
                        }
                    }
                }
                Err(error) => failures.push(format!("{}: lookup failed: {error}", urls[index])),
            }
        }
        for chunk in absent.chunks(4_000) {
            match client.lookup_transfers(chunk).await {
                Ok(found) => {
                    for transfer in found {
                        failures.push(format!("{}: transfer {:#x} exists but must not", urls[index], transfer.id));
                    }
                }
                Err(error) => failures.push(format!("{}: lookup failed: {error}", urls[index])),
            }
        }
    }
    Check::new(
        "acknowledged results on every validator, once",
        failures,
        format!(
            "{acknowledged} requests, {} created and {} refused transfers, on {} validators",
            created.len(),
            absent.len(),
            urls.len()
        ),
    )
}

/// Per ledger, debits equal credits on every validator, and every account holds what the
/// acknowledged transfers imply (so nothing applied twice, and nothing unacknowledged applied
/// after all: every unknown answer was resolved before this check).
pub async fn balances(urls: &[String], clients: &[Client], expected: &Balances) -> Check {
    let mut failures = Vec::new();
    let ids = account_ids();
    for (index, client) in clients.iter().enumerate() {
        let accounts = match client.lookup_accounts(&ids).await {
            Ok(accounts) => accounts,
            Err(error) => {
                failures.push(format!("{}: {error}", urls[index]));
                continue;
            }
        };
        let mut per_ledger: HashMap<u32, (u128, u128, u128, u128)> = HashMap::new();
        for account in &accounts {
            let sums = per_ledger.entry(account.ledger).or_default();
            sums.0 += account.debits_pending;
            sums.1 += account.debits_posted;
            sums.2 += account.credits_pending;
            sums.3 += account.credits_posted;
            let model = expected.get(&account.id).copied().unwrap_or_default();
            let stored =
                (account.debits_pending, account.debits_posted, account.credits_pending, account.credits_posted);
            if stored != model {
                failures
                    .push(format!("{}: account {} holds {stored:?}, acknowledged {model:?}", urls[index], account.id));
            }
        }
        for (ledger, (debits_pending, debits_posted, credits_pending, credits_posted)) in per_ledger {
            if debits_pending != credits_pending || debits_posted != credits_posted {
                failures.push(format!("{}: ledger {ledger} debits and credits differ", urls[index]));
            }
        }
        if accounts.len() != ids.len() {
            failures.push(format!("{}: {} of {} accounts", urls[index], accounts.len(), ids.len()));
        }
    }
    Check::new(
        "conservation per ledger, balances as acknowledged",
        failures,
        format!("{} accounts on {} validators", ids.len(), urls.len()),
    )
}

/// No validator's log shows a panic.
pub fn no_panics(logs: &[std::path::PathBuf]) -> Check {
    let mut failures = Vec::new();
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines().filter(|line| line.contains("panicked at")) {
            failures.push(format!("{}: {line}", log.display()));
        }
    }
    Check::new("no validator panicked", failures, format!("{} logs read", logs.len()))
}
