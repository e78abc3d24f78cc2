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
        match &record.answer {
            Answer::Acknowledged { results, .. } => {
                for (transfer, result) in record.transfers.iter().zip(results) {
                    if result.status == CreateTransferStatus::Created {
                        created.push((result.timestamp, *transfer));
                    }
                }
            }
            Answer::Recovered { created: recovered } => {
                created.extend(recovered.iter().map(|(transfer, timestamp)| (*timestamp, *transfer)));
            }
            Answer::Unknown(_) => {}
        }
    }
    created.sort_by_key(|(timestamp, _)| *timestamp);
    let by_id: HashMap<u128, Transfer> = created.iter().map(|(_, transfer)| (transfer.id, *transfer)).collect();
    let mut balances = Balances::new();
    for (_, transfer) in &created {
        if transfer.flags.contains(TransferFlags::POST_PENDING_TRANSFER)
            || transfer.flags.contains(TransferFlags::VOID_PENDING_TRANSFER)
        {
            // A post or void is created only after its pending transfer.
            let Some(&pending) = by_id.get(&transfer.pending_id) else { continue };
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
    // A validator that rejoined from an empty disk may still be catching up: up to 90 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while tokio::time::Instant::now() < deadline {
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
                        format!("height {height}: {}…", digests[0].get(..16).unwrap_or(&digests[0])),
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

/// Validators stopped only for storage the nemesis damaged (flipped bytes, a full disk): a
/// kill, a pause, a cut link or a stepped clock must never stop one, nor damage its files.
pub fn halts_only_on_damage(halts: &[(usize, String)], damaged: &std::collections::BTreeSet<usize>) -> Check {
    let failures = halts
        .iter()
        .filter(|(index, reason)| !damaged.contains(index) || !is_storage_fail_stop(reason))
        .map(|(index, reason)| format!("validator {index}: {reason}"))
        .collect();
    Check::new(
        "validators stopped only on storage the nemesis damaged",
        failures,
        format!("{} stops, all fail-stops on damaged storage", halts.len()),
    )
}

/// Waits (until `deadline`) for every validator to have finalized `height`: one restarted at
/// the end may still be a few blocks behind the others.
pub async fn wait_caught_up(urls: &[String], height: u64, deadline: tokio::time::Instant) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("an HTTP client");
    while tokio::time::Instant::now() < deadline {
        let mut behind = false;
        for url in urls {
            let reached = match http.get(format!("{url}/v1/status")).send().await {
                Ok(response) => response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|status| status["height"].as_str().and_then(|height| height.parse::<u64>().ok())),
                Err(_) => None,
            };
            behind |= reached.is_none_or(|reached| reached < height);
        }
        if !behind {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// GET `path`, asking again (once a second, until `deadline`) while the validator answers 503
/// `outcome_repairing`: the record is damaged on its disk and being fetched from its peers.
async fn outcome_after_repair(
    http: &reqwest::Client,
    path: &str,
    deadline: tokio::time::Instant,
) -> reqwest::Result<reqwest::Response> {
    loop {
        let response = http.get(path).send().await?;
        if response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE || tokio::time::Instant::now() >= deadline {
            return Ok(response);
        }
        let body = response.bytes().await?;
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if value["error"]["code"] != "outcome_repairing" {
            return http.get(path).send().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Every acknowledged request answers the same outcome on every validator, every created
/// transfer exists there exactly as acknowledged, and nothing else was created.
pub async fn acknowledged_everywhere(
    urls: &[String],
    client_key: &str,
    journal: &Journal,
    clients: &[Client],
    rejoined: &std::collections::BTreeSet<usize>,
) -> Check {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client");
    let mut failures = Vec::new();
    let mut created: Vec<(u128, Transfer, u64)> = Vec::new();
    let mut absent: Vec<u128> = journal.never_applied.clone();
    let mut acknowledged = 0;
    // Bounded as a whole, so that a validator that hangs cannot hold the suite past CI's limit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    for record in &journal.records {
        if tokio::time::Instant::now() >= deadline {
            failures.push(String::from("the validators did not answer every outcome within 120 s"));
            break;
        }
        let (height, results) = match &record.answer {
            Answer::Acknowledged { height, results } => (height, results),
            // No outcome to compare; what it created is checked on every validator below.
            Answer::Recovered { created: recovered } => {
                let ids: Vec<u128> = recovered.iter().map(|(transfer, _)| transfer.id).collect();
                for transfer in &record.transfers {
                    if !ids.contains(&transfer.id) {
                        absent.push(transfer.id);
                    }
                }
                created.extend(recovered.iter().map(|(transfer, timestamp)| (transfer.id, *transfer, *timestamp)));
                continue;
            }
            Answer::Unknown(why) => {
                failures.push(format!("request {:#x} never got a final answer ({why})", record.request_id));
                continue;
            }
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
        for (index, url) in urls.iter().enumerate() {
            let path = format!("{url}/v1/requests/{client_key}/{}", record.request_id);
            match outcome_after_repair(&http, &path, deadline).await {
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
                // A validator that rejoined from its peers' snapshot holds no older history, and
                // says so; its state is checked below like every other's.
                Ok(response) if rejoined.contains(&index) && response.status() == reqwest::StatusCode::NOT_FOUND => {
                    let value: serde_json::Value = response.json().await.unwrap_or_default();
                    if value["error"]["code"] != "outcome_not_held" {
                        failures.push(format!("{url}: request {:#x}: {value}", record.request_id));
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

/// Whether a panic's message is a fail-stop on a storage error: Tally halts a validator whose
/// storage fails (a full disk, damaged files it cannot read) by ending its task, and
/// Commonware's journals and marshal's archives do the same when an append, a sync or an open
/// fails. These stop the validator on purpose (the API answers 503 `halted`, `tally start`
/// exits non-zero); any other panic is a bug.
pub fn is_storage_fail_stop(message: &str) -> bool {
    [
        "validator halted: storage failed",
        // A restart whose own files no longer open (`tally start` exits with this).
        "the validator failed to start: storage failed",
        "unable to append to journal",
        "unable to open journal",
        "unable to sync journal",
        // Marshal's archives (its cache of notarized blocks, finalized blocks, certificates).
        "failed to persist ",
        "failed to initialize metadata",
        "failed to initialize application metadata",
        "failed to sync finalization",
        "failed to sync application progress",
        "failed to sync floor metadata",
        "failed to store finalization",
        "failed to insert finalization",
        "failed to insert certified block",
        "failed to prune archives",
        "failed to prune finalized archives",
        "failed to start finalization archive sync",
        "failed to sync finalization archives",
        "round floor sync must succeed",
    ]
    .iter()
    .any(|known| message.contains(known))
        || (message.contains("failed to initialize ") && message.contains(" archive"))
}

/// The same for a panic at `location` (the `panicked at` line): also, whatever Commonware was
/// doing, a panic in a Commonware crate whose cause is the disk itself (its storage reports the
/// operating system's error at the end of the chain). In Tally's own code such a panic is a bug:
/// Tally halts on storage errors with `validator halted`.
pub fn is_storage_fail_stop_at(location: &str, message: &str) -> bool {
    is_storage_fail_stop(message)
        || (location.contains("/commonware-")
            && [
                "No space left on device",
                "(os error 28)",
                "Runtime(WriteFailed)",
                "Runtime(ReadFailed)",
                // A blob whose checksum or header no longer holds: the bytes on disk were damaged.
                "Runtime(BlobCorrupt(",
            ]
            .iter()
            .any(|cause| message.contains(cause)))
}

/// No validator's log shows a panic other than a fail-stop on a storage error (counted apart).
pub fn no_panics(logs: &[std::path::PathBuf]) -> (Check, usize) {
    let mut failures = Vec::new();
    let mut fail_stops = 0;
    for log in logs {
        let text = match std::fs::read(log) {
            Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(_) => {
                failures.push(format!("{}: empty (a validator logs at start)", log.display()));
                continue;
            }
            Err(error) => {
                failures.push(format!("{}: {error}", log.display()));
                continue;
            }
        };
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate().filter(|(_, line)| line.contains("panicked at")) {
            // The panic's message is the line after its location.
            let message = lines.get(at + 1).copied().unwrap_or_default();
            if is_storage_fail_stop_at(line, message) {
                fail_stops += 1;
            } else {
                failures.push(format!("{}: {line} {message}", log.display()));
            }
        }
    }
    let check = Check::new(
        "no validator panicked (storage fail-stops apart)",
        failures,
        format!("{} logs read; {fail_stops} fail-stops on storage errors", logs.len()),
    );
    (check, fail_stops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Intent, Record};
    use tally_ledger::CreateTransferResult;

    #[test]
    fn the_model_counts_what_recovered_requests_created_and_nothing_unknown() {
        let transfer = |id: u128, amount: u128| Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        let record = |id: u128, transfers: Vec<Transfer>, answer: Answer| Record {
            request_id: id,
            transfers,
            intent: Intent::Succeed,
            answer,
        };
        let created = |timestamp| CreateTransferResult { timestamp, status: CreateTransferStatus::Created };
        let records = [
            record(1, vec![transfer(10, 5)], Answer::Acknowledged { height: 3, results: vec![created(100)] }),
            // Included, outcome no longer held: one of its two transfers exists in the ledger.
            record(
                2,
                vec![transfer(20, 7), transfer(21, 11)],
                Answer::Recovered { created: vec![(transfer(20, 7), 200)] },
            ),
            record(3, vec![transfer(30, 1_000)], Answer::Unknown("no validator answered".into())),
        ];
        let balances = model(&records);
        assert_eq!(balances[&1], (0, 12, 0, 0));
        assert_eq!(balances[&2], (0, 0, 0, 12));
    }

    #[test]
    fn a_restart_refused_on_damaged_storage_is_a_fail_stop_only_where_the_nemesis_damaged() {
        let refused = String::from(
            "error: starting the validator: the validator failed to start: storage failed: marshal's \
             finalization archive: metadata error: runtime error: blob corrupt: \
             validator-marshal-finalizations-metadata/6c656674 reason: invalid header padding",
        );
        let halts = vec![(1, refused.clone())];
        let damaged: std::collections::BTreeSet<usize> = [1].into();
        assert!(halts_only_on_damage(&halts, &damaged).passed);
        let undamaged: std::collections::BTreeSet<usize> = [2].into();
        assert!(!halts_only_on_damage(&halts, &undamaged).passed, "validator 1's disk was never damaged");
        let other = vec![(1, String::from("error: starting the validator: the validator failed to start: no quorum"))];
        assert!(!halts_only_on_damage(&other, &damaged).passed, "not a storage error");
    }

    #[test]
    fn only_storage_fail_stops_are_told_apart_from_panics() {
        let dir = std::env::temp_dir().join(format!("tally-faults-panics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("validator.log");
        std::fs::write(
            &log,
            "started\nthread 'w' panicked at a.rs:1:1:\nunable to append to journal: Runtime(WriteFailed)\n\
             thread 'w' panicked at c.rs:3:3:\nfailed to persist notarization: journal error: No space left\n\
             thread 'w' panicked at /r/commonware-consensus-2026.10.0/src/marshal/core/actor.rs:2021:29:\n\
             failed to start finalization archive sync: freezer error: journal error: \
             runtime error: io error: No space left on device (os error 28)\n\
             thread 'w' panicked at /r/commonware-storage-2026.10.0/src/x.rs:5:5:\nunexpected: Runtime(WriteFailed)\n\
             thread 'w' panicked at /r/commonware-consensus-2026.10.0/src/marshal/core/stream.rs:80:10:\n\
             failed to initialize application metadata: Runtime(BlobCorrupt(\"validator-marshal-application-metadata\", \
             \"7269676874\", \"invalid header padding\"))\n\
             thread 'w' panicked at /r/commonware-storage-2026.10.0/src/y.rs:7:7:\nunexpected: Runtime(BlobCorrupt(\"p\", \"n\", \"bad\"))\n\
             thread 'w' panicked at crates/chain/src/log.rs:6:6:\ncalled `Result::unwrap()` on an `Err` value: \
             Runtime(WriteFailed)\n\
             thread 'w' panicked at b.rs:2:2:\nindex out of bounds\n",
        )
        .unwrap();
        let (check, fail_stops) = no_panics(std::slice::from_ref(&log));
        assert!(!check.passed, "{}", check.detail);
        assert_eq!(fail_stops, 6);
        assert!(check.detail.contains("index out of bounds"), "{}", check.detail);
        assert!(
            check.detail.contains("crates/chain/src/log.rs"),
            "a disk error unwrapped in Tally is a bug: {}",
            check.detail
        );
        std::fs::write(&log, "").unwrap();
        assert!(!no_panics(std::slice::from_ref(&log)).0.passed, "an empty log is not a clean one");
        assert!(!no_panics(&[dir.join("missing.log")]).0.passed);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
