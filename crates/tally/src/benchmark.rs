//! `tally benchmark`: TigerBeetle's benchmark, read side by side with `tigerbeetle benchmark`.
//!
//! It starts a local cluster of `tally start` processes (or drives the validators given with
//! `--addresses`), creates `--account-count` accounts, then `--transfer-count` transfers between
//! them in full batches with `--clients` batches in flight, through the Rust SDK (which sends
//! requests in their binary form). It prints, in TigerBeetle's words, `load accepted = N tx/s`
//! and `batch latency p1 = … p100 = …`, then the finality figures and, for a cluster it started,
//! each validator's CPU time and peak RSS. `--validate` then looks up every transfer and
//! account and checks them against the client's own model of what the ledger must hold.
//!
//! The workload is a pure function of the seed: batch `k` is drawn from its own generator, so
//! that the workers can build batches in any order and the validation can build them again.

use crate::client::{ClientArgs, connect};
use anyhow::{Context as _, anyhow, bail, ensure};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tally_client::Client;
use tally_client::constants::REQUEST_EVENTS_MAX;
use tally_ledger::{Account, CreateAccountStatus, CreateTransferStatus, Transfer};
use tally_node::cluster::{self, Layout};

pub const EXAMPLES: &str = "\
Examples:
  tally benchmark                                   4 validators, 1,000,000 transfers
  tally benchmark --transfer-count 400000 --clients 4
  tally benchmark --validators 1 --transfer-count 20000 --account-count 100 --validate
  tally benchmark --addresses http://10.0.0.1:7001,http://10.0.0.2:7001 --key client-0.key --json";

/// The ledger and code of every account and transfer the benchmark creates.
const LEDGER: u32 = 1;
const CODE: u16 = 1;
/// Transfers move 1 to this many units.
const AMOUNT_MAX: u64 = 1_000;
/// How long a started cluster may take until every validator answers.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the validation waits for the validator it reads to reach the run's last block.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// The most batches in flight.
const CLIENTS_MAX: usize = 256;
/// The most mismatches the validation lists (it counts them all).
const MISMATCHES_SHOWN: usize = 20;
/// Clock ticks per second in /proc/PID/stat: USER_HZ, which Linux fixes at 100 for user space.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, clap::Args)]
pub struct BenchmarkArgs {
    /// How many validators to start, each a `tally start` process on loopback (1 included).
    #[arg(long = "validators", id = "validator_count", value_name = "N", default_value_t = 4)]
    validators: usize,
    /// Drive an existing cluster instead of starting one: its validators' API URLs.
    #[arg(long, value_name = "URL,...", value_delimiter = ',', conflicts_with = "validator_count")]
    addresses: Vec<String>,
    /// With --addresses: the client's private key file (listed in the cluster's genesis).
    #[arg(long, value_name = "FILE", env = "TALLY_CLIENT_KEY")]
    key: Option<PathBuf>,
    /// With --addresses: the chain id [default: the one the first validator that answers reports].
    #[arg(long, value_name = "ID", env = "TALLY_CHAIN_ID")]
    chain_id: Option<u64>,
    /// How many transfers to create.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    transfer_count: u64,
    /// How many accounts the transfers move between (at least 2).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    account_count: u64,
    /// Events per request [default: the most a request holds, 8190].
    #[arg(long, value_name = "N", default_value_t = REQUEST_EVENTS_MAX)]
    batch_size: usize,
    /// Batches in flight at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    clients: usize,
    /// How skewed the choice of accounts is: account k (from 1) is drawn with weight 1/k^S;
    /// 0 draws uniformly random pairs.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    zipf: f64,
    /// The workload's seed [default: random]; the same seed gives the same transfers.
    #[arg(long)]
    seed: Option<u64>,
    /// Afterwards, look up every transfer and account and check them against the client's model.
    #[arg(long)]
    validate: bool,
    /// Print one JSON object with every figure instead of lines for people.
    #[arg(long)]
    json: bool,
}

impl BenchmarkArgs {
    fn check(&self) -> anyhow::Result<()> {
        ensure!(self.transfer_count > 0, "--transfer-count must be at least 1");
        ensure!(self.account_count >= 2, "--account-count must be at least 2: a transfer moves between two accounts");
        ensure!(
            (1..=REQUEST_EVENTS_MAX).contains(&self.batch_size),
            "--batch-size must be from 1 to {REQUEST_EVENTS_MAX}, the most a request holds"
        );
        ensure!((1..=CLIENTS_MAX).contains(&self.clients), "--clients must be from 1 to {CLIENTS_MAX}");
        ensure!(self.zipf.is_finite() && self.zipf >= 0.0, "--zipf must be a number from 0 up");
        if self.addresses.is_empty() {
            ensure!(
                (1..=cluster::VALIDATORS_MAX).contains(&self.validators),
                "--validators must be from 1 to {}",
                cluster::VALIDATORS_MAX
            );
        } else {
            ensure!(self.key.is_some(), "--addresses needs the client's key: pass --key FILE or set TALLY_CLIENT_KEY");
        }
        Ok(())
    }
}

/// Runs the benchmark; stops the cluster it started when done, on an error, or on Ctrl-C.
pub fn run(args: BenchmarkArgs) -> anyhow::Result<()> {
    args.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut local: Option<LocalCluster> = None;
    let result = runtime.block_on(async {
        // Listen for Ctrl-C and SIGTERM before any validator starts, so that neither can end
        // this process while it leaves validators running.
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        if args.addresses.is_empty() {
            local = Some(LocalCluster::start(args.validators)?);
        }
        tokio::select! {
            result = drive(&args, local.as_ref()) => result,
            _ = interrupt.recv() => Err(anyhow!("interrupted")),
            _ = terminate.recv() => Err(anyhow!("terminated")),
        }
    });
    // Whatever happened, the validators stop before this returns (and again in `Drop`, which
    // also covers a panic).
    if let Some(cluster) = local.as_mut() {
        cluster.stop();
        if result.is_err() {
            cluster.keep_files();
        }
    }
    let report = result?;
    report.print(args.json);
    match report.problem() {
        None => Ok(()),
        Some(problem) => Err(anyhow!(problem)),
    }
}

/// Everything a run measured.
#[derive(Debug, Default)]
struct Report {
    target: String,
    transfer_count: u64,
    account_count: u64,
    batch_size: usize,
    clients: usize,
    zipf: f64,
    seed: u64,
    accounts_seconds: f64,
    transfers_seconds: f64,
    /// Every batch's latency, sorted.
    latencies: Vec<Duration>,
    /// Each block that held a batch of the run, with when its first answer arrived.
    blocks: BTreeMap<u64, Instant>,
    finality: Option<Histogram>,
    not_created: Vec<String>,
    not_created_count: u64,
    validation: Option<Vec<String>>,
    validation_mismatches: u64,
    validators: Vec<ValidatorUsage>,
    /// This process's own: signing, encoding and reading answers, to tell whether the load
    /// generator limits the figures.
    client: Option<ValidatorUsage>,
}

impl Report {
    fn load_accepted(&self) -> u64 {
        (self.transfer_count as f64 / self.transfers_seconds.max(1e-9)).round() as u64
    }

    /// The latency at percentile `p` (TigerBeetle's rule: the item at `len * p / 100`).
    fn latency_ms(&self, p: usize) -> u64 {
        assert!(!self.latencies.is_empty());
        let index = (self.latencies.len() * p / 100).min(self.latencies.len() - 1);
        self.latencies[index].as_millis() as u64
    }

    /// The longest wait between answers from consecutive blocks that held the run's batches.
    fn finality_gap_ms(&self) -> u64 {
        let instants: Vec<Instant> = self.blocks.values().copied().collect();
        instants.windows(2).map(|pair| pair[1].saturating_duration_since(pair[0]).as_millis() as u64).max().unwrap_or(0)
    }

    fn problem(&self) -> Option<String> {
        if self.not_created_count > 0 {
            return Some(format!("{} events were not created (listed above)", self.not_created_count));
        }
        if self.validation_mismatches > 0 {
            return Some(format!("validation found {} mismatches (listed above)", self.validation_mismatches));
        }
        None
    }

    fn print(&self, json: bool) {
        if json {
            println!("{}", serde_json::to_string(&self.to_json()).expect("JSON values serialize"));
            return;
        }
        println!("{}", self.target);
        println!(
            "{} accounts, {} transfers in batches of {}, {} in flight, {}, seed {}",
            self.account_count,
            self.transfer_count,
            self.batch_size,
            self.clients,
            if self.zipf == 0.0 { String::from("uniform random pairs") } else { format!("zipf {}", self.zipf) },
            self.seed
        );
        println!("accounts created in {:.2} s; transfers in {:.2} s", self.accounts_seconds, self.transfers_seconds);
        println!("load accepted = {} tx/s", self.load_accepted());
        println!(
            "batch latency p1 = {} ms p50 = {} ms p99 = {} ms p100 = {} ms",
            self.latency_ms(1),
            self.latency_ms(50),
            self.latency_ms(99),
            self.latency_ms(100)
        );
        match &self.finality {
            Some(histogram) if histogram.count() > 0 => println!(
                "finality latency p50 <= {} p99 <= {} p100 <= {} (validators' own: submission received to final and \
                 durable, {} submissions)",
                histogram.quantile_text(0.50),
                histogram.quantile_text(0.99),
                histogram.quantile_text(1.0),
                histogram.count()
            ),
            _ => println!("finality latency: the validators reported no submissions"),
        }
        println!(
            "finality gap max = {} ms over {} blocks (longest wait between answers from consecutive blocks)",
            self.finality_gap_ms(),
            self.blocks.len()
        );
        for usage in &self.validators {
            println!(
                "validator {}: cpu = {:.1} s (user {:.1} s, system {:.1} s), peak rss = {} MiB",
                usage.index,
                usage.user_seconds + usage.system_seconds,
                usage.user_seconds,
                usage.system_seconds,
                usage.peak_rss_bytes / (1024 * 1024)
            );
        }
        if let Some(usage) = &self.client {
            println!(
                "benchmark client: cpu = {:.1} s (user {:.1} s, system {:.1} s), peak rss = {} MiB",
                usage.user_seconds + usage.system_seconds,
                usage.user_seconds,
                usage.system_seconds,
                usage.peak_rss_bytes / (1024 * 1024)
            );
        }
        for line in &self.not_created {
            println!("not created: {line}");
        }
        match &self.validation {
            None => {}
            Some(mismatches) if self.validation_mismatches == 0 => {
                assert!(mismatches.is_empty());
                println!(
                    "validate: ok: {} transfers and {} accounts match the client's model",
                    self.transfer_count, self.account_count
                );
            }
            Some(mismatches) => {
                println!("validate: {} mismatches", self.validation_mismatches);
                for line in mismatches {
                    println!("  {line}");
                }
            }
        }
    }

    fn to_json(&self) -> Value {
        let finality = self.finality.as_ref().filter(|histogram| histogram.count() > 0).map(|histogram| {
            json!({
                "submissions": histogram.count(),
                "p50_ms_at_most": histogram.quantile_ms(0.50),
                "p99_ms_at_most": histogram.quantile_ms(0.99),
                "p100_ms_at_most": histogram.quantile_ms(1.0),
            })
        });
        json!({
            "target": self.target,
            "transfer_count": self.transfer_count,
            "account_count": self.account_count,
            "batch_size": self.batch_size,
            "clients": self.clients,
            "zipf": self.zipf,
            "seed": self.seed,
            "accounts_seconds": self.accounts_seconds,
            "transfers_seconds": self.transfers_seconds,
            "load_accepted_tx_per_s": self.load_accepted(),
            "batches": self.latencies.len(),
            "batch_latency_ms": {
                "p1": self.latency_ms(1),
                "p50": self.latency_ms(50),
                "p99": self.latency_ms(99),
                "p100": self.latency_ms(100),
            },
            "finality_latency": finality,
            "finality_gap_max_ms": self.finality_gap_ms(),
            "blocks": self.blocks.len(),
            "not_created": self.not_created_count,
            "validated": self.validation.as_ref().map(|_| self.validation_mismatches == 0),
            "mismatches": self.validation_mismatches,
            "mismatches_shown": self.validation.clone().unwrap_or_default(),
            "validators": self.validators.iter().map(|usage| json!({
                "index": usage.index,
                "pid": usage.pid,
                "cpu_seconds": usage.user_seconds + usage.system_seconds,
                "user_seconds": usage.user_seconds,
                "system_seconds": usage.system_seconds,
                "peak_rss_bytes": usage.peak_rss_bytes,
            })).collect::<Vec<_>>(),
            "client": self.client.as_ref().map(|usage| json!({
                "cpu_seconds": usage.user_seconds + usage.system_seconds,
                "user_seconds": usage.user_seconds,
                "system_seconds": usage.system_seconds,
                "peak_rss_bytes": usage.peak_rss_bytes,
            })),
        })
    }
}

/// The run itself: accounts, transfers, figures, and the validation.
async fn drive(args: &BenchmarkArgs, local: Option<&LocalCluster>) -> anyhow::Result<Report> {
    let client = match local {
        Some(cluster) => {
            let signer = tally_client::load_signer(&cluster.client_key)?;
            let client = Client::new(&cluster.urls, cluster.chain_id, signer)?;
            cluster.wait_until_serving(&client).await?;
            client
        }
        None => {
            let cluster = ClientArgs {
                validators: args.addresses.clone(),
                key: args.key.clone(),
                chain_id: args.chain_id,
                json: false,
                // It measures load; `--validate` checks the outcomes against a model after.
                genesis: None,
                no_verify: true,
            };
            connect(&cluster, true, false).await?
        }
    };
    let client = Arc::new(client);
    let seed = args.seed.unwrap_or_else(|| {
        u64::from_be_bytes(tally_client::random_request_id().to_be_bytes()[..8].try_into().expect("8 bytes"))
    });
    let workload = Arc::new(Workload::new(seed, args.account_count, args.transfer_count, args.batch_size, args.zipf));
    let mut report = Report {
        target: match local {
            Some(cluster) => format!(
                "a local cluster of {} validator process{} (tally start), data in {}",
                cluster.children.len(),
                if cluster.children.len() == 1 { "" } else { "es" },
                cluster.dir.display()
            ),
            None => format!("the cluster at {}", args.addresses.join(",")),
        },
        transfer_count: args.transfer_count,
        account_count: args.account_count,
        batch_size: args.batch_size,
        clients: args.clients,
        zipf: args.zipf,
        seed,
        ..Report::default()
    };

    let started = Instant::now();
    let accounts = run_batches(&client, &workload, Phase::Accounts, args.clients).await?;
    report.accounts_seconds = started.elapsed().as_secs_f64();
    // The validators' histogram counts from here: the transfers only.
    let finality_before = finality_histogram(client.validators()).await;
    let started = Instant::now();
    let transfers = run_batches(&client, &workload, Phase::Transfers, args.clients).await?;
    report.transfers_seconds = started.elapsed().as_secs_f64();
    let finality_after = finality_histogram(client.validators()).await;
    report.finality = finality_after.map(|after| match finality_before {
        Some(before) => after.minus(&before),
        None => after,
    });

    let mut latencies = transfers.latencies;
    latencies.sort();
    report.latencies = latencies;
    report.blocks = transfers.blocks;
    report.not_created = accounts.not_created.into_iter().chain(transfers.not_created).take(MISMATCHES_SHOWN).collect();
    report.not_created_count = accounts.not_created_count + transfers.not_created_count;
    if let Some(cluster) = local {
        report.validators = cluster.usage()?;
    }
    report.client = Some(read_usage(0, std::process::id())?);
    if args.validate {
        let last_height = report.blocks.keys().next_back().copied().unwrap_or(0).max(accounts.last_height);
        let (mismatches, count) = validate(&client, &workload, last_height).await?;
        report.validation = Some(mismatches);
        report.validation_mismatches = count;
    }
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Accounts,
    Transfers,
}

/// What the batches of one phase came to.
#[derive(Debug, Default)]
struct PhaseResult {
    latencies: Vec<Duration>,
    blocks: BTreeMap<u64, Instant>,
    last_height: u64,
    not_created: Vec<String>,
    not_created_count: u64,
}

/// Sends every batch of `phase` with `clients` batches in flight, each worker taking the next
/// batch as it finishes one. The first error stops every worker.
async fn run_batches(
    client: &Arc<Client>,
    workload: &Arc<Workload>,
    phase: Phase,
    clients: usize,
) -> anyhow::Result<PhaseResult> {
    let batches = workload.batches(phase);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(phase, workload.events(phase), done.clone());
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients.min(batches) {
        let (client, workload, next, failed, done) =
            (client.clone(), workload.clone(), next.clone(), failed.clone(), done.clone());
        workers.spawn(async move {
            let mut result = PhaseResult::default();
            loop {
                let batch = next.fetch_add(1, Ordering::Relaxed);
                if batch >= batches || failed.load(Ordering::Relaxed) {
                    return Ok::<_, anyhow::Error>(result);
                }
                let outcome = send_batch(&client, &workload, phase, batch).await;
                let sent = match outcome {
                    Ok(sent) => sent,
                    Err(error) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(error.context(format!("batch {batch} of the {phase:?}")));
                    }
                };
                done.fetch_add(sent.events, Ordering::Relaxed);
                result.latencies.push(sent.latency);
                result.blocks.entry(sent.height).or_insert(sent.answered);
                result.last_height = result.last_height.max(sent.height);
                result.not_created_count += sent.not_created.len() as u64;
                result.not_created.extend(sent.not_created.into_iter().take(MISMATCHES_SHOWN));
            }
        });
    }
    let mut total = PhaseResult::default();
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        match joined.expect("a benchmark worker does not panic") {
            Ok(result) => {
                total.latencies.extend(result.latencies);
                for (height, answered) in result.blocks {
                    let entry = total.blocks.entry(height).or_insert(answered);
                    *entry = (*entry).min(answered);
                }
                total.last_height = total.last_height.max(result.last_height);
                total.not_created_count += result.not_created_count;
                total.not_created.extend(result.not_created);
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    progress.finish();
    if let Some(error) = first_error {
        return Err(error);
    }
    assert_eq!(total.latencies.len(), batches);
    total.not_created.truncate(MISMATCHES_SHOWN);
    Ok(total)
}

/// One batch, sent and final.
struct Sent {
    events: u64,
    latency: Duration,
    answered: Instant,
    height: u64,
    not_created: Vec<String>,
}

async fn send_batch(client: &Client, workload: &Workload, phase: Phase, batch: usize) -> anyhow::Result<Sent> {
    let started = Instant::now();
    let (events, height, not_created) = match phase {
        Phase::Accounts => {
            let accounts = workload.accounts(batch);
            let outcome = client.create_accounts(&accounts).await?;
            let not_created: Vec<String> = outcome
                .results
                .iter()
                .zip(&accounts)
                .filter(|(result, _)| result.status != CreateAccountStatus::Created)
                .map(|(result, account)| format!("account {}: {}", account.id, result.status.name()))
                .collect();
            (accounts.len(), outcome.height(), not_created)
        }
        Phase::Transfers => {
            let transfers = workload.transfers(batch);
            let outcome = client.create_transfers(&transfers).await?;
            let not_created: Vec<String> = outcome
                .results
                .iter()
                .zip(&transfers)
                .filter(|(result, _)| result.status != CreateTransferStatus::Created)
                .map(|(result, transfer)| format!("transfer {}: {}", transfer.id, result.status.name()))
                .collect();
            (transfers.len(), outcome.height(), not_created)
        }
    };
    let answered = Instant::now();
    Ok(Sent { events: events as u64, latency: answered - started, answered, height, not_created })
}

/// Looks up every transfer and account and compares them with what the workload says the ledger
/// must hold: each transfer's fields, and each account's posted debits and credits (the sums of
/// its transfers). Returns the first mismatches and how many there were.
async fn validate(client: &Client, workload: &Workload, last_height: u64) -> anyhow::Result<(Vec<String>, u64)> {
    wait_for_height(client, last_height).await?;
    let accounts = workload.account_count as usize;
    let mut debits = vec![0u128; accounts];
    let mut credits = vec![0u128; accounts];
    let mut shown = Vec::new();
    let mut count = 0u64;
    let mut mismatch = |line: String| {
        count += 1;
        if shown.len() < MISMATCHES_SHOWN {
            shown.push(line);
        }
    };
    let done = Arc::new(AtomicU64::new(0));
    let progress = Progress::start_named("validating transfers", workload.transfer_count, done.clone());
    for batch in 0..workload.batches(Phase::Transfers) {
        let expected = workload.transfers(batch);
        let ids: Vec<u128> = expected.iter().map(|transfer| transfer.id).collect();
        let found = client.lookup_transfers(&ids).await.context("looking up the transfers")?;
        let found: BTreeMap<u128, Transfer> = found.into_iter().map(|transfer| (transfer.id, transfer)).collect();
        for transfer in &expected {
            debits[workload.account_index(transfer.debit_account_id)] += transfer.amount;
            credits[workload.account_index(transfer.credit_account_id)] += transfer.amount;
            match found.get(&transfer.id) {
                None => mismatch(format!("transfer {} does not exist", transfer.id)),
                Some(stored) => {
                    let differences = transfer_differences(transfer, stored);
                    if !differences.is_empty() {
                        mismatch(format!("transfer {}: {}", transfer.id, differences.join(", ")));
                    }
                }
            }
        }
        done.fetch_add(expected.len() as u64, Ordering::Relaxed);
    }
    progress.finish();
    for batch in 0..workload.batches(Phase::Accounts) {
        let expected = workload.accounts(batch);
        let ids: Vec<u128> = expected.iter().map(|account| account.id).collect();
        let found = client.lookup_accounts(&ids).await.context("looking up the accounts")?;
        let found: BTreeMap<u128, Account> = found.into_iter().map(|account| (account.id, account)).collect();
        for account in &expected {
            let index = workload.account_index(account.id);
            let Some(stored) = found.get(&account.id) else {
                mismatch(format!("account {} does not exist", account.id));
                continue;
            };
            let mut differences = Vec::new();
            let mut compare = |field: &str, expected: u128, actual: u128| {
                if expected != actual {
                    differences.push(format!("{field} is {actual}, the model says {expected}"));
                }
            };
            compare("debits_posted", debits[index], stored.debits_posted);
            compare("credits_posted", credits[index], stored.credits_posted);
            compare("debits_pending", 0, stored.debits_pending);
            compare("credits_pending", 0, stored.credits_pending);
            compare("ledger", u128::from(account.ledger), u128::from(stored.ledger));
            compare("code", u128::from(account.code), u128::from(stored.code));
            if !differences.is_empty() {
                mismatch(format!("account {}: {}", account.id, differences.join(", ")));
            }
        }
    }
    Ok((shown, count))
}

/// What differs between the transfer the benchmark sent and the one the ledger holds.
fn transfer_differences(sent: &Transfer, stored: &Transfer) -> Vec<String> {
    let mut differences = Vec::new();
    let mut compare = |field: &str, expected: u128, actual: u128| {
        if expected != actual {
            differences.push(format!("{field} is {actual}, sent {expected}"));
        }
    };
    compare("debit_account_id", sent.debit_account_id, stored.debit_account_id);
    compare("credit_account_id", sent.credit_account_id, stored.credit_account_id);
    compare("amount", sent.amount, stored.amount);
    compare("ledger", u128::from(sent.ledger), u128::from(stored.ledger));
    compare("code", u128::from(sent.code), u128::from(stored.code));
    compare("flags", u128::from(sent.flags.bits()), u128::from(stored.flags.bits()));
    if stored.timestamp == 0 {
        differences.push(String::from("timestamp is 0"));
    }
    differences
}

/// Waits until the validator the client reads from has finalized `height`: every batch was
/// answered final by some validator, and reads go to the one that answered last.
async fn wait_for_height(client: &Client, height: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let status = client.status().await?;
        if status.height >= height {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the validator read from is at height {} after {CATCH_UP_TIMEOUT:?}; the run's last block is {height}",
                status.height
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The accounts and transfers of a run, each batch drawn from its own generator.
#[derive(Debug)]
struct Workload {
    seed: u64,
    /// Ids are this plus 1, 2, …, so that runs against one cluster do not collide.
    id_base: u128,
    account_count: u64,
    transfer_count: u64,
    batch_size: usize,
    /// Cumulative weights of accounts 1..=n under the zipf skew (empty: uniform).
    zipf_cumulative: Vec<f64>,
}

impl Workload {
    fn new(seed: u64, account_count: u64, transfer_count: u64, batch_size: usize, zipf: f64) -> Self {
        let id_base = u128::from(SplitMix::new(seed ^ 0x6964_5f62_6173_65).next()) << 64;
        let zipf_cumulative = if zipf == 0.0 {
            Vec::new()
        } else {
            let mut total = 0.0;
            (1..=account_count)
                .map(|rank| {
                    total += 1.0 / (rank as f64).powf(zipf);
                    total
                })
                .collect()
        };
        Self { seed, id_base, account_count, transfer_count, batch_size, zipf_cumulative }
    }

    fn events(&self, phase: Phase) -> u64 {
        match phase {
            Phase::Accounts => self.account_count,
            Phase::Transfers => self.transfer_count,
        }
    }

    fn batches(&self, phase: Phase) -> usize {
        self.events(phase).div_ceil(self.batch_size as u64) as usize
    }

    /// The events `[start, end)` of batch `batch`.
    fn range(&self, phase: Phase, batch: usize) -> std::ops::Range<u64> {
        let start = batch as u64 * self.batch_size as u64;
        let end = (start + self.batch_size as u64).min(self.events(phase));
        assert!(start < end, "batch {batch} is past the end");
        start..end
    }

    fn account_id(&self, index: u64) -> u128 {
        self.id_base + u128::from(index) + 1
    }

    fn account_index(&self, id: u128) -> usize {
        let index = id - self.id_base - 1;
        assert!(index < u128::from(self.account_count), "account {id} is not one of the run's");
        index as usize
    }

    fn accounts(&self, batch: usize) -> Vec<Account> {
        self.range(Phase::Accounts, batch)
            .map(|index| Account { id: self.account_id(index), ledger: LEDGER, code: CODE, ..Account::default() })
            .collect()
    }

    fn transfers(&self, batch: usize) -> Vec<Transfer> {
        let mut random = SplitMix::new(self.seed ^ (batch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        self.range(Phase::Transfers, batch)
            .map(|index| {
                let debit = self.draw_account(&mut random);
                let mut credit = self.draw_account(&mut random);
                while credit == debit {
                    credit = self.draw_account(&mut random);
                }
                Transfer {
                    id: self.id_base + u128::from(index) + 1,
                    debit_account_id: self.account_id(debit),
                    credit_account_id: self.account_id(credit),
                    amount: u128::from(1 + random.next() % AMOUNT_MAX),
                    ledger: LEDGER,
                    code: CODE,
                    ..Transfer::default()
                }
            })
            .collect()
    }

    /// An account index: uniform, or under the zipf skew (index 0 the hottest).
    fn draw_account(&self, random: &mut SplitMix) -> u64 {
        if self.zipf_cumulative.is_empty() {
            return random.next() % self.account_count;
        }
        let total = *self.zipf_cumulative.last().expect("at least two accounts");
        let target = random.unit() * total;
        let index = self.zipf_cumulative.partition_point(|weight| *weight <= target);
        (index as u64).min(self.account_count - 1)
    }
}

/// SplitMix64: a small, fast, seedable generator; the workload needs no more.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A line on standard error that counts events while a phase runs (only on a terminal).
struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(phase: Phase, total: u64, done: Arc<AtomicU64>) -> Self {
        let name = match phase {
            Phase::Accounts => "creating accounts",
            Phase::Transfers => "creating transfers",
        };
        Self::start_named(name, total, done)
    }

    fn start_named(name: &'static str, total: u64, done: Arc<AtomicU64>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { task: None };
        }
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let done = done.load(Ordering::Relaxed);
                let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
                let percent = done * 100 / total.max(1);
                let width = 30;
                let filled = (percent as usize * width / 100).min(width);
                eprint!(
                    "\r\x1b[K{name} [{}{}] {done}/{total} ({percent}%) {rate:.0}/s",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
                let _ = std::io::stderr().flush();
            }
        });
        Self { task: Some(task) }
    }

    fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}

/// The validators' finalization-latency histogram (`tally_finalization_latency_seconds` in
/// `/metrics`), summed over every validator that answers; `None` if none does.
async fn finality_histogram(validators: &[String]) -> Option<Histogram> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
    let mut total: Option<Histogram> = None;
    for url in validators {
        let Ok(response) = http.get(format!("{url}/metrics")).send().await else { continue };
        let Ok(text) = response.text().await else { continue };
        let histogram = Histogram::parse(&text);
        total = Some(match total {
            Some(sum) => sum.plus(&histogram),
            None => histogram,
        });
    }
    total
}

/// A Prometheus histogram's cumulative buckets: upper bound (seconds) and count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<(f64, u64)>,
}

impl Histogram {
    const NAME: &'static str = "tally_finalization_latency_seconds_bucket{le=\"";

    fn parse(text: &str) -> Self {
        let mut buckets: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(Self::NAME)?;
                let (bound, rest) = rest.split_once("\"}")?;
                let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? };
                Some((bound, rest.trim().parse().ok()?))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self { buckets }
    }

    fn combine(&self, other: &Self, op: fn(u64, u64) -> u64) -> Self {
        if self.buckets.is_empty() {
            return Self { buckets: other.buckets.iter().map(|(bound, count)| (*bound, op(0, *count))).collect() };
        }
        let buckets = self
            .buckets
            .iter()
            .map(|(bound, count)| {
                let theirs = other.buckets.iter().find(|(b, _)| b == bound).map_or(0, |(_, count)| *count);
                (*bound, op(*count, theirs))
            })
            .collect();
        Self { buckets }
    }

    fn plus(&self, other: &Self) -> Self {
        self.combine(other, u64::saturating_add)
    }

    fn minus(&self, earlier: &Self) -> Self {
        self.combine(earlier, u64::saturating_sub)
    }

    fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |(_, count)| *count)
    }

    /// The upper bound (ms) of the bucket that holds quantile `q`; `None` past the last finite one.
    fn quantile_ms(&self, q: f64) -> Option<u64> {
        let count = self.count();
        assert!(count > 0);
        let target = ((q * count as f64).ceil() as u64).clamp(1, count);
        let (bound, _) = self.buckets.iter().find(|(_, cumulative)| *cumulative >= target)?;
        bound.is_finite().then(|| (bound * 1_000.0).round() as u64)
    }

    fn quantile_text(&self, q: f64) -> String {
        match self.quantile_ms(q) {
            Some(ms) => format!("{ms} ms"),
            None => {
                let last = self.buckets.iter().rev().find(|(bound, _)| bound.is_finite()).map_or(0.0, |(b, _)| *b);
                format!("inf (over {} ms)", (last * 1_000.0).round() as u64)
            }
        }
    }
}

/// A validator's resources, read from /proc while it runs.
#[derive(Debug, Clone)]
struct ValidatorUsage {
    index: usize,
    pid: u32,
    user_seconds: f64,
    system_seconds: f64,
    peak_rss_bytes: u64,
}

fn read_usage(index: usize, pid: u32) -> anyhow::Result<ValidatorUsage> {
    let stat_path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&stat_path).with_context(|| format!("reading {stat_path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("no ')' in /proc/PID/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14 and stime field 15.
    let ticks = |field: usize| -> anyhow::Result<f64> {
        let text = fields.get(field - 3).with_context(|| format!("{stat_path} has no field {field}"))?;
        Ok(text.parse::<u64>().with_context(|| format!("{stat_path} field {field}"))? as f64 / CLOCK_TICKS_PER_SECOND)
    };
    let status_path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&status_path).with_context(|| format!("reading {status_path}"))?;
    let peak_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .with_context(|| format!("no VmHWM in {status_path}"))?;
    Ok(ValidatorUsage {
        index,
        pid,
        user_seconds: ticks(14)?,
        system_seconds: ticks(15)?,
        peak_rss_bytes: peak_kib * 1024,
    })
}

/// A cluster of `tally start` processes on loopback, generated in a fresh directory as `tally dev`
/// generates its own. Dropping it kills them and, unless told to keep them, removes the files.
#[derive(Debug)]
struct LocalCluster {
    dir: PathBuf,
    children: Vec<Child>,
    urls: Vec<String>,
    client_key: PathBuf,
    chain_id: u64,
    keep: bool,
}

impl LocalCluster {
    fn start(validators: usize) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("tally-benchmark-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let layout = Layout::loopback(validators, free_base_port(2 * validators)?);
        let files = cluster::init(&layout, &dir)?;
        let mut cluster = Self {
            dir,
            children: Vec::with_capacity(validators),
            urls: (0..validators).map(|index| format!("http://127.0.0.1:{}", layout.ports(index).1)).collect(),
            client_key: files.client_keys.first().context("the cluster has a client key")?.clone(),
            chain_id: layout.chain_id,
            keep: false,
        };
        let program = std::env::current_exe().context("finding the tally binary")?;
        for (index, config) in files.configs.iter().enumerate() {
            let log = std::fs::File::create(cluster.log_path(index))?;
            let child = Command::new(&program)
                .args(["start", "--config"])
                .arg(config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                // Its own process group: a Ctrl-C at the terminal reaches the benchmark only,
                // which stops the validators itself.
                .process_group(0)
                .spawn()
                .with_context(|| format!("starting validator {index}"))?;
            cluster.children.push(child);
        }
        Ok(cluster)
    }

    fn log_path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("validator-{index}.log"))
    }

    /// Waits until every validator answers its status, or fails naming the one that does not
    /// (with the end of its log if it exited).
    async fn wait_until_serving(&self, client: &Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let statuses = client.status_of_each().await;
            if statuses.iter().all(|(_, status)| status.is_ok()) {
                return Ok(());
            }
            for (index, child) in self.children.iter().enumerate() {
                if !is_running(child.id()) {
                    bail!("validator {index} exited at start:\n{}", tail(&self.log_path(index)));
                }
            }
            if Instant::now() > deadline {
                let waiting: Vec<&str> =
                    statuses.iter().filter(|(_, status)| status.is_err()).map(|(url, _)| url.as_str()).collect();
                bail!("validators at {} did not answer within {START_TIMEOUT:?}", waiting.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn usage(&self) -> anyhow::Result<Vec<ValidatorUsage>> {
        self.children.iter().enumerate().map(|(index, child)| read_usage(index, child.id())).collect()
    }

    /// Keeps the directory (its logs) after an error, and says where it is.
    fn keep_files(&mut self) {
        self.keep = true;
        eprintln!("the cluster's files and logs are kept in {}", self.dir.display());
    }

    /// Kills every validator and waits for it (the data is thrown away, so nothing is lost).
    fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether process `pid` still runs (a zombie, one that exited but was not waited for, does not).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A base port with `count` free ports after it (a moment ago), below the ephemeral range where
/// outgoing connections take their ports.
fn free_base_port(count: usize) -> anyhow::Result<u16> {
    use std::net::{Ipv4Addr, TcpListener};
    let mut random = SplitMix::new(u64::from(std::process::id()) ^ 0x7061_7373);
    for _ in 0..200 {
        let base = 20_000 + (random.next() % 12_000) as u16;
        let listeners: Vec<_> = (0..count as u16)
            .map_while(|offset| TcpListener::bind((Ipv4Addr::LOCALHOST, base.checked_add(offset)?)).ok())
            .collect();
        if listeners.len() == count {
            return Ok(base);
        }
    }
    bail!("found no {count} free ports in a row on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_event_once_and_are_the_same_when_built_again() {
        let workload = Workload::new(7, 10, 25, 8, 0.0);
        assert_eq!(workload.batches(Phase::Transfers), 4);
        assert_eq!(workload.batches(Phase::Accounts), 2);
        let transfers: Vec<Transfer> = (0..4).flat_map(|batch| workload.transfers(batch)).collect();
        assert_eq!(transfers.len(), 25);
        let ids: std::collections::BTreeSet<u128> = transfers.iter().map(|transfer| transfer.id).collect();
        assert_eq!(ids.len(), 25);
        for transfer in &transfers {
            assert_ne!(transfer.debit_account_id, transfer.credit_account_id);
            assert!((1..=u128::from(AMOUNT_MAX)).contains(&transfer.amount));
            workload.account_index(transfer.debit_account_id);
            workload.account_index(transfer.credit_account_id);
        }
        assert_eq!(workload.transfers(2), transfers[16..24]);
        let accounts: Vec<Account> = (0..2).flat_map(|batch| workload.accounts(batch)).collect();
        assert_eq!(accounts.len(), 10);
        assert_eq!(workload.account_index(accounts[9].id), 9);
        assert_ne!(Workload::new(8, 10, 25, 8, 0.0).transfers(0), workload.transfers(0), "another seed");
    }

    #[test]
    fn zipf_favours_the_first_accounts_and_zero_is_uniform() {
        let count = |zipf: f64| {
            let workload = Workload::new(3, 100, 1, 1, zipf);
            let mut random = SplitMix::new(1);
            let mut hits = [0u32; 100];
            for _ in 0..100_000 {
                hits[workload.draw_account(&mut random) as usize] += 1;
            }
            hits
        };
        let skewed = count(1.0);
        // With s = 1 over 100 accounts, the first holds 1/H(100), about 19% of the draws.
        assert!((17_000..21_000).contains(&skewed[0]), "{}", skewed[0]);
        assert!(skewed[0] > 5 * skewed[9]);
        let uniform = count(0.0);
        assert!(uniform.iter().all(|hits| (700..1_300).contains(hits)), "{uniform:?}");
    }

    #[test]
    fn histogram_quantiles_are_bucket_bounds() {
        let text = "# TYPE tally_finalization_latency_seconds histogram\n\
            tally_finalization_latency_seconds_sum 1.5\n\
            tally_finalization_latency_seconds_count 10\n\
            tally_finalization_latency_seconds_bucket{le=\"0.01\"} 0\n\
            tally_finalization_latency_seconds_bucket{le=\"0.02\"} 5\n\
            tally_finalization_latency_seconds_bucket{le=\"0.04\"} 9\n\
            tally_finalization_latency_seconds_bucket{le=\"+Inf\"} 10\n";
        let histogram = Histogram::parse(text);
        assert_eq!(histogram.count(), 10);
        assert_eq!(histogram.quantile_ms(0.5), Some(20));
        assert_eq!(histogram.quantile_ms(0.9), Some(40));
        assert_eq!(histogram.quantile_ms(1.0), None);
        assert_eq!(histogram.quantile_text(1.0), "inf (over 40 ms)");
        let earlier = Histogram::parse(&text.replace("} 5", "} 4").replace("} 9", "} 8").replace("} 10", "} 8"));
        let delta = histogram.minus(&earlier);
        assert_eq!(delta.count(), 2);
        assert_eq!(delta.quantile_ms(0.5), Some(20));
        assert_eq!(histogram.plus(&histogram).count(), 20);
    }

    #[test]
    fn latency_percentiles_follow_tigerbeetle() {
        let report = Report {
            latencies: (1..=200).map(Duration::from_millis).collect(),
            transfer_count: 1_000,
            transfers_seconds: 2.0,
            ..Report::default()
        };
        assert_eq!(
            [report.latency_ms(1), report.latency_ms(50), report.latency_ms(99), report.latency_ms(100)],
            [3, 101, 199, 200]
        );
        assert_eq!(report.load_accepted(), 500);
    }

    #[test]
    fn a_transfer_that_differs_is_described_field_by_field() {
        let sent = Transfer {
            id: 1,
            debit_account_id: 2,
            credit_account_id: 3,
            amount: 4,
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        let stored = Transfer { timestamp: 9, ..sent };
        assert!(transfer_differences(&sent, &stored).is_empty());
        let wrong = Transfer { amount: 5, credit_account_id: 7, timestamp: 0, ..sent };
        assert_eq!(
            transfer_differences(&sent, &wrong),
            ["credit_account_id is 7, sent 3", "amount is 5, sent 4", "timestamp is 0"]
        );
    }

    #[test]
    fn this_process_has_usage() {
        let usage = read_usage(0, std::process::id()).unwrap();
        assert!(usage.peak_rss_bytes > 0);
        assert!(is_running(std::process::id()));
    }
}
