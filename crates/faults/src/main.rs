//! `tally-faults`: Tally's fault suite on real processes. Four `tally start` validators on
//! loopback, every link between them through a fault proxy; concurrent clients submit
//! transfers and record every answer while a nemesis, on a schedule drawn from a printed seed,
//! kills, pauses, cuts off, damages, fills the disk of and steps the clock of validators, and
//! crashes all four at once. Afterwards it checks that every acknowledged transfer is present
//! once with its acknowledged result on every validator, one state digest at one height,
//! money conserved per ledger, new transfers accepted within 30 s of the last heal, and no
//! panics; it prints a table of faults and checks and exits non-zero if a check failed.
//!
//! ```text
//! cargo run --release -p tally-faults -- [--seed S] [--duration-secs 180]
//! cargo run --release -p tally-faults -- --soak          # an hour, with memory and disk over time
//! ```

mod checks;
mod cluster;
mod nemesis;
mod proxy;
mod workload;

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_ledger::Transfer;
use workload::{Answer, Intent, Journal};

/// How soon after the last heal the cluster must accept a new transfer.
const LIVENESS_BOUND: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(name = "tally-faults", about = "Tally's fault suite: real validators, a seeded nemesis, checked afterwards")]
struct Args {
    /// The seed of the schedule [default: drawn from the clock, and printed].
    #[arg(long)]
    seed: Option<u64>,
    /// How long the nemesis works, in seconds [default: 180, or 3600 with --soak].
    #[arg(long)]
    duration_secs: Option<u64>,
    /// A long run (an hour unless --duration-secs says otherwise) that also samples every
    /// validator's memory and disk each minute and reports whether they level off.
    #[arg(long)]
    soak: bool,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: u64,
    /// The `tally` binary [default: the one beside this binary].
    #[arg(long)]
    tally: Option<PathBuf>,
    /// Where the cluster's files go (emptied first) [default: a directory under the system's temp].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The first of the eight ports the validators listen on [default: a free range].
    #[arg(long)]
    base_port: Option<u16>,
    /// Fail the run if a kind of fault cannot be injected on this machine (CI uses it, so that
    /// a missing libfaketime or a refused mount does not pass unnoticed).
    #[arg(long)]
    require_all_faults: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    // Interrupted (Ctrl-C, or CI's timeout): dropping the run stops the validators and
    // unmounts the tmpfs (`Cluster`'s `Drop`).
    let interrupted = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = run(args) => result,
            signal = interrupted => Err(anyhow::anyhow!("stopped by {signal}; the validators were stopped")),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("tally-faults: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_nanos() as u64)
    });
    let duration = Duration::from_secs(args.duration_secs.unwrap_or(if args.soak { 3_600 } else { 180 }));
    let tally = match args.tally {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("tally"),
    };
    anyhow::ensure!(tally.exists(), "no tally binary at {} (build it, or give --tally)", tally.display());
    let dir = args.dir.unwrap_or_else(|| std::env::temp_dir().join("tally-faults"));
    let base_port = match args.base_port {
        Some(port) => port,
        None => free_base_port()?,
    };
    println!("tally-faults: seed {seed}, {} s of faults; replay the schedule with", duration.as_secs());
    println!(
        "  cargo run --release -p tally-faults -- --seed {seed} --duration-secs {}{}",
        duration.as_secs(),
        if args.soak { " --soak" } else { "" }
    );

    // One stream of draws for the schedule, one per client, all from the seed.
    let stream = |label: u64| tally_sim::scenario::Draw::new(seed ^ label.wrapping_mul(0xA076_1D64_78BD_642F));
    let mut schedule = stream(0);
    let disk_victim = schedule.index(4);
    let tmpfs_mib = if args.soak { 4_096 } else { 512 };
    let mut cluster = cluster::Cluster::start(&dir, &tally, base_port, disk_victim, tmpfs_mib).await?;
    println!(
        "cluster up in {}: disk faults {}, clock steps {}",
        dir.display(),
        match cluster.tmpfs {
            Some((index, mib)) => format!("on validator {index} ({mib} MiB tmpfs)"),
            None => String::from("skipped (mounting a tmpfs needs root)"),
        },
        if cluster.can_step_clocks() { "with libfaketime" } else { "skipped (install Debian's faketime)" },
    );
    let urls: Vec<String> = cluster.validators.iter().map(|validator| validator.api.clone()).collect();
    let signer = tally_client::load_signer(&cluster.client_key).context("the client key")?;
    let client_key = tally_client::Client::new(&urls, cluster.chain_id, signer.clone())?.client_key_hex().to_string();

    // The accounts, before any fault.
    let setup = workload::client(&urls, 0, cluster.chain_id, &signer, Duration::from_secs(60));
    let created = setup.create_accounts(&workload::accounts()).await.context("creating the accounts")?;
    anyhow::ensure!(
        created.results.iter().all(|result| result.status == tally_ledger::CreateAccountStatus::Created),
        "the accounts were not all created: {:?}",
        created.results
    );

    // Clients and nemesis.
    let journal = Arc::new(Mutex::new(Journal::default()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let pause = if args.soak { Duration::from_millis(200) } else { Duration::from_millis(20) };
    let mut tasks = tokio::task::JoinSet::new();
    for number in 0..args.clients {
        let clients: Vec<_> = (0..urls.len())
            .map(|first| workload::client(&urls, first, cluster.chain_id, &signer, Duration::from_secs(20)))
            .collect();
        let (journal, stopped, draw) = (journal.clone(), stopped.clone(), stream(100 + number));
        tasks.spawn(workload::run_client(number + 1, clients, draw, journal, stopped, pause));
    }
    let started = Instant::now();
    let sample_every = args.soak.then_some(Duration::from_secs(60));
    let chain_id = cluster.chain_id;
    let mut nemesis = nemesis::Nemesis::new(&mut cluster, schedule, started, sample_every);
    for (kind, why) in nemesis.unavailable() {
        println!("left out: {} ({why})", kind.describe());
    }
    nemesis.run(started + duration).await;
    let last_heal = nemesis.outcome.last_heal.unwrap_or_else(Instant::now);
    // What follows shares one deadline, so that the run ends (with its report) within CI's limit.
    let finish_by = Instant::now() + Duration::from_secs(170);
    // Liveness: a new transfer right after the last heal (three of four validators suffice).
    let probe = workload::client(&urls, 0, chain_id, &signer, LIVENESS_BOUND);
    let probe_transfer = Transfer {
        id: u128::MAX - 1,
        debit_account_id: 1,
        credit_account_id: 2,
        amount: 1,
        ledger: 1,
        code: 1,
        ..Transfer::default()
    };
    let probe_id = tally_client::random_request_id();
    let probe_record = workload::send(&probe, probe_id, vec![probe_transfer], Intent::Succeed, &journal).await;
    let liveness_after = last_heal.elapsed();
    let live = matches!(probe_record.answer, Answer::Acknowledged { .. }) && liveness_after <= LIVENESS_BOUND;
    // Every validator back (they restart in parallel; one deadline for all).
    let healthy_by = Instant::now() + Duration::from_secs(60);
    for index in 0..4 {
        let left = healthy_by.saturating_duration_since(Instant::now());
        if let Err(error) = nemesis.cluster.wait_healthy(index, left).await {
            nemesis.outcome.stopped_on_their_own.push(format!("after the faults: {error:#}"));
        }
    }
    let mut outcome = std::mem::take(&mut nemesis.outcome);
    if args.soak {
        nemesis.sample();
        outcome.samples.extend(std::mem::take(&mut nemesis.outcome.samples));
    }

    stop.send_replace(true);
    while tasks.join_next().await.is_some() {}

    // Every request without a final answer is sent again with its id until it has one: it
    // applies at most once, so afterwards every record is acknowledged.
    // Sixteen at a time, each within 60 s.
    let resolve_wait =
        finish_by.saturating_duration_since(Instant::now()).clamp(Duration::from_secs(5), Duration::from_secs(60));
    let resolver = Arc::new(workload::client(&urls, 1, cluster.chain_id, &signer, resolve_wait));
    let unknown: Vec<usize> = {
        let journal = journal.lock().unwrap();
        (0..journal.records.len())
            .filter(|index| matches!(journal.records[*index].answer, Answer::Unknown(_)))
            .collect()
    };
    for batch in unknown.chunks(16) {
        let mut resolving = tokio::task::JoinSet::new();
        for index in batch {
            let record = journal.lock().unwrap().records[*index].clone();
            let (resolver, index) = (resolver.clone(), *index);
            resolving.spawn(async move {
                let answer = match resolver.create_transfers_with_id(record.request_id, &record.transfers).await {
                    Ok(outcome) => Answer::Acknowledged { height: outcome.height(), results: outcome.results },
                    Err(error) => Answer::Unknown(format!("still no answer after the faults healed: {error}")),
                };
                (index, workload::Record { answer, ..record })
            });
        }
        while let Some(joined) = resolving.join_next().await {
            let (index, resolved) = joined.expect("a resolving task does not panic");
            workload::judge(&resolved, &journal);
            journal.lock().unwrap().records[index] = resolved;
        }
    }

    // The checks.
    let single: Vec<tally_client::Client> = urls
        .iter()
        .map(|url| workload::client(std::slice::from_ref(url), 0, cluster.chain_id, &signer, Duration::from_secs(10)))
        .collect();
    let recovered = recover_included(&journal, &resolver).await;

    let journal = std::mem::take(&mut *journal.lock().unwrap());
    let mut results = vec![
        checks::Check::new(
            "clients saw no wrong answer",
            journal.violations.clone(),
            format!(
                "{} requests; {} retries answered the same; {} reused ids refused",
                journal.records.len(),
                journal.retries_same,
                journal.conflicts_refused
            ),
        ),
        checks::Check::new(
            "new transfers within 30 s of the last heal",
            if live { Vec::new() } else { vec![format!("{:?} after {liveness_after:?}", probe_record.answer)] },
            format!("acknowledged {:.1} s after the last heal", liveness_after.as_secs_f64()),
        ),
    ];
    let expected = checks::model(&journal.records);
    let height_acknowledged = journal
        .records
        .iter()
        .filter_map(|record| match record.answer {
            Answer::Acknowledged { height, .. } => Some(height),
            Answer::Unknown(_) | Answer::Recovered { .. } => None,
        })
        .max()
        .unwrap_or(0);
    let caught_up_by = tokio::time::Instant::now() + Duration::from_secs(60);
    checks::wait_caught_up(&urls, height_acknowledged, caught_up_by).await;
    let mut state = vec![
        checks::one_state_digest(&urls).await,
        checks::acknowledged_everywhere(&urls, &client_key, &journal, &single, &outcome.rejoined).await,
        checks::balances(&urls, &single, &expected).await,
    ];
    // Reading every old outcome may meet damage that no read met before (a validator checks its
    // old records only when it reads them): the validator halts then, and serves nothing wrong.
    // It rejoins with an empty data directory, as an operator would, and the checks run again.
    let mut halted_in_checks = Vec::new();
    for index in 0..cluster.validators.len() {
        if cluster.is_halted(index).await || !cluster.is_running(index) {
            halted_in_checks.push(index);
        }
    }
    if !halted_in_checks.is_empty() {
        for index in &halted_in_checks {
            let reason = nemesis::halt_reason(&cluster.validators[*index].log);
            outcome.stopped_on_their_own.push(format!(
                "validator {index} stopped while the checks read its history ({reason}); rejoined with an empty data \
                 directory and checked again"
            ));
            outcome.halts.push((*index, reason));
            outcome.rejoined.insert(*index);
            cluster.rejoin(*index)?;
        }
        for index in &halted_in_checks {
            cluster.wait_healthy(*index, Duration::from_secs(60)).await?;
        }
        state = vec![
            checks::one_state_digest(&urls).await,
            checks::acknowledged_everywhere(&urls, &client_key, &journal, &single, &outcome.rejoined).await,
            checks::balances(&urls, &single, &expected).await,
        ];
    }
    results.splice(1..1, state);
    results.push(checks::halts_only_on_damage(&outcome.halts, &outcome.damaged));
    let logs: Vec<PathBuf> = cluster.validators.iter().map(|validator| validator.log.clone()).collect();
    results.push(checks::no_panics(&logs).0);
    if args.require_all_faults {
        let missing: Vec<String> = nemesis::Kind::ALL
            .into_iter()
            .filter(|kind| !outcome.events.iter().any(|event| event.kind == *kind && event.injected))
            .map(|kind| format!("never injected: {}", kind.describe()))
            .collect();
        results.push(checks::Check::new(
            "every kind of fault injected",
            missing,
            format!("{} kinds", nemesis::Kind::ALL.len()),
        ));
    }
    cluster.shut_down();

    report(seed, duration, &outcome, &unknown, recovered, &results);
    Ok(results.iter().all(|check| check.passed))
}

fn report(
    seed: u64,
    duration: Duration,
    outcome: &nemesis::Outcome,
    unknown: &[usize],
    recovered: usize,
    results: &[checks::Check],
) {
    println!();
    println!("faults (seed {seed}, {} s):", duration.as_secs());
    println!("| fault | times |");
    println!("| --- | --- |");
    for kind in nemesis::Kind::ALL {
        let times = outcome.events.iter().filter(|event| event.kind == kind && event.injected).count();
        println!("| {} | {times} |", kind.describe());
    }
    println!();
    println!("the schedule:");
    for event in &outcome.events {
        println!("- {:>6.1} s  {:?}: {}", event.at.as_secs_f64(), event.kind, event.detail);
    }
    if !outcome.stopped_on_their_own.is_empty() {
        println!();
        println!("validators that stopped on their own (restarted, as an operator would):");
        for note in &outcome.stopped_on_their_own {
            println!("- {note}");
        }
    }
    println!();
    println!("{} requests had no final answer during the faults and were resolved afterwards", unknown.len());
    if recovered > 0 {
        println!(
            "{recovered} of them were included but no validator held their outcome any more (each had rejoined from \
             a snapshot above them); what they created was read back from the ledger"
        );
    }
    if !outcome.samples.is_empty() {
        println!();
        println!("| minute | RSS MiB per validator | data MiB per validator |");
        println!("| --- | --- | --- |");
        for sample in &outcome.samples {
            let rss: Vec<String> = sample
                .rss_kib
                .iter()
                .map(|kib| kib.map_or(String::from("-"), |kib| (kib / 1024).to_string()))
                .collect();
            let disk: Vec<String> = sample.disk_bytes.iter().map(|bytes| (bytes >> 20).to_string()).collect();
            println!("| {:.0} | {} | {} |", sample.at.as_secs_f64() / 60.0, rss.join(" "), disk.join(" "));
        }
    }
    println!();
    println!("| check | result | detail |");
    println!("| --- | --- | --- |");
    for check in results {
        println!("| {} | {} | {} |", check.name, if check.passed { "pass" } else { "FAIL" }, check.detail);
    }
}

/// A base port with eight free ports after it, below the ephemeral range.
fn free_base_port() -> anyhow::Result<u16> {
    for attempt in 0..200u32 {
        let base = 20_000 + ((std::process::id().wrapping_mul(7_919) + attempt * 104_729) % 12_000) as u16;
        let free = (0..8).all(|offset| std::net::TcpListener::bind(("127.0.0.1", base + offset)).is_ok());
        if free {
            return Ok(base);
        }
    }
    anyhow::bail!("no free range of 8 ports")
}

/// What the SDK says of a validator that refused a retry as included but holds no outcome for it.
const OUTCOME_NOT_HELD: &str = "does not hold the outcome";

/// Requests the resolution could not answer because every validator refused the retry as
/// included and none holds the outcome (each rejoined from a snapshot above it): what they
/// created is read back from the ledger (every transfer id is sent in one request only), and
/// they become `Answer::Recovered`. Returns how many.
async fn recover_included(journal: &Mutex<Journal>, client: &tally_client::Client) -> usize {
    let unheld: Vec<usize> = {
        let journal = journal.lock().unwrap();
        (0..journal.records.len())
            .filter(|index| {
                matches!(&journal.records[*index].answer, Answer::Unknown(why) if why.contains(OUTCOME_NOT_HELD))
            })
            .collect()
    };
    let mut recovered = 0;
    for index in unheld {
        let record = journal.lock().unwrap().records[index].clone();
        let ids: Vec<u128> = record.transfers.iter().map(|transfer| transfer.id).collect();
        let Ok(found) = client.lookup_transfers(&ids).await else { continue };
        let created = found
            .iter()
            .filter_map(|stored| {
                let sent = record.transfers.iter().find(|sent| sent.id == stored.id)?;
                Some((*sent, stored.timestamp))
            })
            .collect();
        journal.lock().unwrap().records[index].answer = Answer::Recovered { created };
        recovered += 1;
    }
    recovered
}
