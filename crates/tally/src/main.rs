//! `tally`: one binary to run validators, a local cluster, and client commands.
//!
//! - `tally init`: a cluster's keys, genesis and one config per validator, in one directory.
//! - `tally start --config FILE`: one validator.
//! - `tally dev`: a whole cluster on loopback in this process, for development.
//! - `tally benchmark`: a load test read side by side with `tigerbeetle benchmark`.
//! - `tally verify`, `tally evidence verify`: check a saved receipt, or saved evidence of
//!   misbehaviour (`evidence.rs`), offline against a genesis.
//! - `tally backup`, `tally backup verify`, `tally restore`: a validator's proven snapshot saved,
//!   checked offline, and seeded into a replacement's data directory (`backup.rs`).
//! - everything else: client commands (`client.rs`), against any validators.

mod backup;
mod benchmark;
mod client;
mod evidence;
mod validators;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  tally dev                                   a local cluster of 4 validators in ./tally-dev
  tally init --validators 4 --hosts 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4 --out cluster
  tally start --config cluster/validator-0.toml
  tally create-account --id 1 --ledger 1 --code 10 \\
      --validator http://127.0.0.1:7001 --key tally-dev/client-0.key";

/// Tally: a Byzantine-fault-tolerant ledger database.
#[derive(Debug, Parser)]
#[command(name = "tally", version, after_help = EXAMPLES)]
struct Cli {
    /// How to write logs (to standard error).
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,

    // The client commands' own options (`--validator`, `--key`, `--chain-id`, `--json`) are
    // added to each of them by `client::add_cluster_options`.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a cluster: validator keys, client keys, the genesis and one config per validator.
    #[command(after_help = validators::INIT_EXAMPLES)]
    Init(validators::InitArgs),

    /// Run one validator from its config file until Ctrl-C or SIGTERM.
    #[command(after_help = "Example:\n  tally start --config cluster/validator-0.toml")]
    Start(validators::StartArgs),

    /// Run a local cluster on loopback in this process: generated in DIR on the first run,
    /// resumed from DIR after that. Ctrl-C or SIGTERM stops every validator.
    #[command(after_help = "Examples:\n  tally dev\n  tally dev --dir /tmp/tally --validators 7 --base-port 9000\n  \
                      tally dev --except 3      (then, in another terminal, validator 3 alone:)\n  \
                      tally start --config tally-dev/validator-3.toml")]
    Dev(validators::DevArgs),

    /// Measure a cluster as `tigerbeetle benchmark` does: create accounts, then transfers in full
    /// batches, and print the load accepted and the batch latencies. Starts a local cluster of
    /// `tally start` processes (stopped at the end), or drives the one at --addresses.
    #[command(after_help = benchmark::EXAMPLES)]
    Benchmark(benchmark::BenchmarkArgs),

    /// Check a saved receipt offline against a genesis: print the outcome it proves, signed by a
    /// quorum of the genesis validators, or `unverified: why` with exit status 3. FILE holds the
    /// receipt as hex (the `receipt` of `GET /v1/requests/{client}/{id}/receipt`, or `verified.receipt`
    /// of a write's `--json`) or as its bytes.
    #[command(after_help = "Example:\n  tally verify receipt.hex --genesis tally-dev/genesis.json")]
    Verify(client::VerifyArgs),

    /// Evidence of misbehaviour that validators keep (`GET /v1/evidence`).
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),

    /// Save a validator's newest snapshot with the certified header that proves it, streamed and
    /// checked chunk by chunk; `tally backup verify` checks a saved one offline against a genesis.
    #[command(after_help = backup::BACKUP_EXAMPLES)]
    Backup(backup::BackupArgs),

    /// Seed an empty data directory from a verified backup, so that `tally start` on it starts
    /// from that state (a replacement machine for a validator of the same chain).
    #[command(after_help = backup::RESTORE_EXAMPLES)]
    Restore(backup::RestoreArgs),

    #[command(flatten)]
    Client(client::ClientCommand),
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The command line, with the cluster options of the client command if one was given.
fn parse() -> (Cli, Option<client::ClientArgs>) {
    let mut command = client::add_cluster_options(Cli::command());
    let matches = command.get_matches_mut();
    let parsed = Cli::from_arg_matches(&matches).and_then(|cli| {
        let cluster = match cli.command {
            Command::Client(_) => Some(client::cluster_args(&matches)?),
            Command::Init(_)
            | Command::Start(_)
            | Command::Dev(_)
            | Command::Benchmark(_)
            | Command::Verify(_)
            | Command::Evidence(_)
            | Command::Backup(_)
            | Command::Restore(_) => None,
        };
        Ok((cli, cluster))
    });
    parsed.unwrap_or_else(|error| error.format(&mut command).exit())
}

fn main() -> ExitCode {
    let (cli, cluster) = parse();
    let result = match cli.command {
        Command::Init(args) => {
            init_logging(cli.log_format, "warn");
            validators::init(args)
        }
        Command::Start(args) => {
            init_logging(cli.log_format, validators::LOG_FILTER);
            validators::start(args)
        }
        Command::Dev(args) => {
            init_logging(cli.log_format, validators::LOG_FILTER);
            validators::dev(args)
        }
        Command::Benchmark(args) => {
            init_logging(cli.log_format, "warn");
            benchmark::run(args)
        }
        Command::Verify(args) => {
            init_logging(cli.log_format, "warn");
            client::verify_file(&args)
        }
        Command::Evidence(command) => {
            init_logging(cli.log_format, "warn");
            evidence::run(command)
        }
        Command::Backup(args) => {
            init_logging(cli.log_format, "warn");
            backup::backup(args)
        }
        Command::Restore(args) => {
            init_logging(cli.log_format, "warn");
            backup::restore(args)
        }
        Command::Client(command) => {
            init_logging(cli.log_format, "warn");
            let cluster = cluster.expect("a client command has cluster options");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(client::run(cluster, command)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // An answer that did not verify: status 3 and a message scripts can tell apart.
        Err(error) if unverified(&error) => {
            let message = format!("{error:#}");
            if message.starts_with("unverified:") {
                eprintln!("{message}");
            } else {
                eprintln!("unverified: {message}");
            }
            ExitCode::from(3)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether a command failed because no validator's answer verified.
fn unverified(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| match cause.downcast_ref::<tally_client::ClientError>() {
        Some(tally_client::ClientError::Unverified { .. }) => true,
        Some(tally_client::ClientError::BatchIncomplete { source, .. }) => {
            matches!(**source, tally_client::ClientError::Unverified { .. })
        }
        _ => false,
    })
}
