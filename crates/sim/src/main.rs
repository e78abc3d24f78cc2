//! `tally-sim`: runs one simulated cluster per seed and reports which seeds failed.
//!
//! ```text
//! cargo run --release -p tally-sim -- --validators 4 --seeds 500 [--start-seed S] [--quiet]
//! ```
//!
//! `--no-power-loss` keeps every drawn fault but the whole-cluster power loss; `--quiet` prints
//! only failing seeds. `TALLY_SIM_LOG=<filter>` (`info`, `tally_chain=warn`, ...) prints the
//! validators' logs, for replaying one seed.
//!
//! The last line is `N passed, M failed`; each failing seed prints its violations and the
//! command that replays it. The exit status is 1 if any seed failed.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tally_sim::scenario::{Byzantine, Stored};
use tally_sim::{Options, replay_command, run_seed};

struct Arguments {
    validators: usize,
    seeds: u64,
    start_seed: u64,
    quiet: bool,
    options: Options,
}

const USAGE: &str = "usage: tally-sim [--validators N] [--seeds COUNT] [--start-seed S] [--no-power-loss] [--quiet]";

fn parse() -> Result<Arguments, String> {
    let mut arguments =
        Arguments { validators: 4, seeds: 100, start_seed: 0, quiet: false, options: Options::default() };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let text = words.next().ok_or_else(|| format!("{name} needs a value"))?;
            text.parse().map_err(|_| format!("{name} takes a number, not {text:?}"))
        };
        match word.as_str() {
            "--validators" => arguments.validators = value("--validators")? as usize,
            "--seeds" => arguments.seeds = value("--seeds")?,
            "--start-seed" => arguments.start_seed = value("--start-seed")?,
            "--quiet" => arguments.quiet = true,
            "--no-power-loss" => arguments.options.power_loss = false,
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if arguments.validators == 0 {
        return Err("--validators must be at least 1".to_string());
    }
    Ok(arguments)
}

fn main() -> ExitCode {
    if let Ok(filter) = std::env::var("TALLY_SIM_LOG") {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).init();
    }
    let arguments = match parse() {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut simulated = Duration::ZERO;
    let mut progress_max = Duration::ZERO;
    let mut results: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut blocked_seeds = 0;
    // Seeds that drew a Byzantine proposer, and those of them in which every honest validator
    // refused at least one of its blocks.
    let mut proposer_seeds = 0;
    let mut refused_everywhere_seeds = 0;
    let mut snapshot_seeds = 0;
    // Lies told and caught by kind, seeds with a lying validator, proven reads, stale refusals.
    let mut lies: BTreeMap<&'static str, tally_sim::check::LieCount> = BTreeMap::new();
    let mut lying_seeds = 0;
    let mut proven_reads = 0;
    let mut stale_refused = 0;
    // Per kind of stored data: seeds that damaged it, and damaged validators that halted or
    // went on.
    let mut damage: BTreeMap<&'static str, [usize; 3]> = BTreeMap::new();
    for seed in arguments.start_seed..arguments.start_seed + arguments.seeds {
        let report = run_seed(seed, arguments.validators, arguments.options);
        simulated += report.simulated;
        progress_max = progress_max.max(report.progressed_after.unwrap_or_default());
        for (status, count) in &report.results {
            *results.entry(status).or_default() += count;
        }
        blocked_seeds += usize::from(report.blocked > 0);
        if report.scenario.byzantine.iter().any(|(_, behaviour)| matches!(behaviour, Byzantine::Proposer(_))) {
            proposer_seeds += 1;
            refused_everywhere_seeds += usize::from(report.blocks_refused.iter().all(|&refused| refused > 0));
        }
        snapshot_seeds += usize::from(report.joined_from_snapshot > 0);
        lying_seeds += usize::from(!report.verification.lies.is_empty());
        for (lie, count) in &report.verification.lies {
            let total = lies.entry(lie).or_default();
            total.told += count.told;
            total.caught += count.caught;
        }
        proven_reads += report.verification.proven_reads.len();
        stale_refused += report.verification.stale_refused;
        let mut kinds: Vec<&'static str> = report.damaged.iter().map(|damaged| damaged.target.name()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            damage.entry(kind).or_default()[0] += 1;
        }
        for damaged in &report.damaged {
            damage.entry(damaged.target.name()).or_default()[if damaged.halted { 1 } else { 2 }] += 1;
        }
        if !arguments.quiet || !report.passed() {
            let damaged: Vec<String> = report
                .damaged
                .iter()
                .map(|damaged| {
                    let fate = if damaged.halted { "halted" } else { "went on" };
                    format!("{} ({} bytes of {}, {fate})", damaged.validator, damaged.bytes, damaged.target.name())
                })
                .collect();
            println!(
                "seed {seed}: {} | height {}, {} blocked peers, {} requests acknowledged, {:.1}s simulated, {:.2}s wall | {} | damaged [{}]",
                if report.passed() { "ok" } else { "FAILED" },
                report.height,
                report.blocked,
                report.requests_acknowledged,
                report.simulated.as_secs_f64(),
                report.wall.as_secs_f64(),
                report.scenario.summary(),
                damaged.join(", "),
            );
        }
        if !report.passed() {
            for failure in &report.failures {
                println!("  seed {seed}: {failure}");
            }
            println!("  replay: {}", replay_command(seed, arguments.validators, arguments.options));
            failed.push(seed);
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let seeds = arguments.seeds.max(1) as f64;
    println!(
        "{} seeds in {wall:.1}s: {:.2} seeds/s, {:.1}s simulated per seed on average, slowest recovery after healing {:.1}s",
        arguments.seeds,
        seeds / wall,
        simulated.as_secs_f64() / seeds,
        progress_max.as_secs_f64(),
    );
    let results: Vec<String> = results.iter().map(|(status, count)| format!("{status} {count}")).collect();
    println!("acknowledged transfer results: {}", results.join(", "));
    println!("seeds in which validators blocked a misbehaving peer: {blocked_seeds}");
    println!(
        "seeds with a Byzantine proposer: {proposer_seeds}, in {refused_everywhere_seeds} of which every honest validator refused its blocks"
    );
    println!("seeds in which a validator caught up from a peer's snapshot: {snapshot_seeds}");
    let told: u64 = lies.values().map(|count| count.told).sum();
    let caught: u64 = lies.values().map(|count| count.caught).sum();
    let kinds: Vec<String> = lies.iter().map(|(lie, count)| format!("{lie} {}/{}", count.caught, count.told)).collect();
    println!("lies told to clients in {lying_seeds} seeds: {caught} of {told} caught ({})", kinds.join(", "));
    println!("proven reads verified: {proven_reads}; true reads refused as older than seen: {stale_refused}");
    let damage: Vec<String> = Stored::ALL
        .iter()
        .map(|stored| {
            let [seeds, halted, went_on] = damage.get(stored.name()).copied().unwrap_or_default();
            format!("{} in {seeds} seeds ({halted} validators halted, {went_on} went on)", stored.name())
        })
        .collect();
    println!("stored data damaged: {}", damage.join(", "));
    if !failed.is_empty() {
        println!("failed seeds: {failed:?}");
    }
    println!("{} passed, {} failed", arguments.seeds as usize - failed.len(), failed.len());
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
