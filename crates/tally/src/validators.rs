//! The commands that run validators: `tally init`, `tally start` and `tally dev`.

use anyhow::{Context as _, bail};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use tally_node::cluster::{self, BASE_PORT_DEFAULT, ClusterFiles, Layout, Refounding};
use tally_node::genesis_file::GenesisFile;
use tally_node::{NodeConfig, RunningNode};

/// Logs of a running validator: Tally's at info, the libraries' warnings.
pub const LOG_FILTER: &str = "warn,tally_node=info,tally_chain=info,tally=info";

/// How many validators `tally dev` runs unless told otherwise: the fewest that tolerate a fault.
const DEV_VALIDATORS_DEFAULT: usize = 4;

pub const INIT_EXAMPLES: &str = "\
Examples:
  tally init --validators 4 --out cluster
  tally init --validators 4 --hosts 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4 --base-port 7000 --out cluster
  tally init --validators 7 --hosts 10.0.0.1 --clients 3 --gateway --chain-id 42 --out cluster
  tally init --found-from tally.backup --source-genesis old/genesis.json --chain-id 2 --out cluster

Validator i listens for peers on BASE_PORT + 2i and serves its API on BASE_PORT + 2i + 1.
Each validator's host needs its validator-<i>.toml and validator-<i>.key, genesis.json, and
with --gateway also gateway.key.";

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// How many validators (n = 3f + 1 tolerates f faulty ones; fewer than 4 tolerate none).
    #[arg(long = "validators", id = "validator_count", value_name = "N", default_value_t = 4)]
    validators: usize,
    /// The validators' IP addresses: one for all, or one per validator.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    hosts: Vec<IpAddr>,
    /// The first port.
    #[arg(long, default_value_t = BASE_PORT_DEFAULT)]
    base_port: u16,
    /// How many client keys to generate and list in the genesis.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Give every validator a gateway (a shared client key and a bearer token) so that callers
    /// without keys can write through it.
    #[arg(long)]
    gateway: bool,
    /// The new chain's id: client requests are signed for it.
    #[arg(long, value_name = "ID", default_value_t = 1)]
    chain_id: u64,
    /// The directory to write (created with mode 0700; must not hold a genesis already).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Re-found a chain from this backup of another (disaster recovery): the new chain starts
    /// from its state, keeps its clients, and needs a --chain-id of its own. Seed each new
    /// validator with `tally restore BACKUP --config validator-<i>.toml` before starting it.
    #[arg(long, value_name = "BACKUP", requires = "source_genesis")]
    found_from: Option<PathBuf>,
    /// The genesis of the chain the --found-from backup is of (it proves the backup).
    #[arg(long, value_name = "FILE", requires = "found_from")]
    source_genesis: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The validator's config file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The cluster's directory: keys, genesis, configs and data.
    #[arg(long, value_name = "DIR", default_value = "tally-dev")]
    dir: PathBuf,
    /// How many validators, on the first run [default: 4] (fewer than 4 tolerate no faulty one).
    #[arg(long = "validators", id = "validator_count", value_name = "N")]
    validators: Option<usize>,
    /// The first port, on the first run.
    #[arg(long, default_value_t = BASE_PORT_DEFAULT)]
    base_port: u16,
    /// Leave validator INDEX out (repeatable), to run it on its own with
    /// `tally start --config DIR/validator-INDEX.toml`: then it can be killed and restarted
    /// while the others carry on.
    #[arg(long, value_name = "INDEX")]
    except: Vec<usize>,
}

pub fn init(args: InitArgs) -> anyhow::Result<()> {
    let refounding = match (&args.found_from, &args.source_genesis) {
        (Some(backup), Some(source)) => {
            let source = GenesisFile::load(source)?;
            let (founding, verified) = crate::backup::founding_from(backup, source.genesis())?;
            println!("{verified}");
            Some(Refounding { founding, clients: source.clients().to_vec() })
        }
        _ => None,
    };
    let layout = Layout {
        validators: args.validators,
        hosts: args.hosts,
        base_port: args.base_port,
        clients: args.clients,
        chain_id: args.chain_id,
        gateway: args.gateway,
        refounding,
    };
    layout.check()?;
    warn_about_faults(&layout);
    let files = cluster::init(&layout, &args.out)?;
    println!(
        "wrote a cluster of {} validators (chain {}) to {}",
        layout.validators,
        layout.chain_id,
        args.out.display()
    );
    println!("  genesis       {}", files.genesis.display());
    for path in &files.configs {
        println!("  validator     {}", path.display());
    }
    for path in &files.client_keys {
        println!("  client key    {}", path.display());
    }
    if let Some(token) = &files.gateway_token {
        println!("  gateway token {token}");
    }
    if files.gateway_token.is_some() {
        println!("copy to each validator's host its validator-<i>.toml and validator-<i>.key, genesis.json,");
        println!("and gateway.key (every validator signs for gateway callers with it); then run there");
    } else {
        println!("copy to each validator's host its validator-<i>.toml and validator-<i>.key, and");
        println!("genesis.json; then run there");
    }
    if let Some(refounding) = &layout.refounding {
        println!(
            "this chain starts from chain {}'s state at height {} and keeps its {} clients; before starting each \
             validator, seed its data directory from the same backup:",
            refounding.founding.chain_id,
            refounding.founding.height,
            refounding.clients.len()
        );
        println!("  tally restore <BACKUP> --config validator-<i>.toml");
        println!("then run there");
    }
    println!("  tally start --config validator-<i>.toml");
    println!("keep the keys and configs private (mode 0600): `tally start` refuses a key, or a config with a");
    println!("gateway token, that the group or others can read");
    Ok(())
}

/// Says on standard error when a cluster would stop at its first faulty validator.
fn warn_about_faults(layout: &Layout) {
    if let Some(warning) = layout.fault_warning() {
        eprintln!("warning: {warning}");
    }
}

/// Refuses `--except` indexes outside a cluster of `validators`, or that leave none to run.
fn check_except(except: &[usize], validators: usize) -> anyhow::Result<()> {
    assert!(validators > 0);
    if let Some(index) = except.iter().find(|index| **index >= validators) {
        bail!("--except {index}: the cluster has validators 0 to {}", validators - 1);
    }
    if (0..validators).all(|index| except.contains(&index)) {
        bail!("--except leaves no validator to run here");
    }
    Ok(())
}

pub fn start(args: StartArgs) -> anyhow::Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let node = tally_node::run(config).context("starting the validator")?;
    if node.has_halted() {
        node.stop()?;
        bail!(
            "the validator halted while opening its data directory (the log above says why) and serves nothing; \
             fix the cause (a full disk; damaged data: move the data directory aside, keeping its `validator-votes` directory) and start it again: it \
             catches up from its peers"
        );
    }
    println!("validator {} serving http://{}", tally_node::hex::encode(node.validator().as_ref()), node.api_address());
    let nodes = [node];
    let waited = wait_for_stop(&nodes, true);
    let [node] = nodes;
    // Stopped in order either way (a halted validator too), then the halt is the exit status.
    node.stop()?;
    waited
}

/// The directory holds a generated cluster.
fn is_cluster(dir: &Path) -> bool {
    dir.join("genesis.json").exists()
}

pub fn dev(args: DevArgs) -> anyhow::Result<()> {
    // Every flag is checked before anything is written, so a mistake leaves no half-made cluster.
    let files = if is_cluster(&args.dir) {
        let files = ClusterFiles::open(&args.dir)?;
        if let Some(count) = args.validators
            && count != files.configs.len()
        {
            bail!(
                "{} holds a cluster of {} validators; remove it or choose another --dir for {count}",
                args.dir.display(),
                files.configs.len()
            );
        }
        check_except(&args.except, files.configs.len())?;
        println!("resuming the cluster in {}", args.dir.display());
        files
    } else {
        let layout = Layout::loopback(args.validators.unwrap_or(DEV_VALIDATORS_DEFAULT), args.base_port);
        layout.check()?;
        check_except(&args.except, layout.validators)?;
        warn_about_faults(&layout);
        let files = cluster::init(&layout, &args.dir)?;
        println!("created a cluster of {} validators in {}", layout.validators, args.dir.display());
        files
    };
    let running: Vec<(usize, &PathBuf)> =
        files.configs.iter().enumerate().filter(|(index, _)| !args.except.contains(index)).collect();
    assert!(!running.is_empty(), "check_except leaves a validator to run");
    let configs = running.iter().map(|(_, path)| NodeConfig::load(path)).collect::<Result<Vec<_>, _>>()?;
    // Start every validator at once, each on its own thread. On an error, the validators that
    // started stop as they are dropped.
    let started: Vec<_> = std::thread::scope(|scope| {
        let starting: Vec<_> = configs.into_iter().map(|config| scope.spawn(move || tally_node::run(config))).collect();
        starting.into_iter().map(|handle| handle.join().expect("a start does not panic")).collect()
    });
    let mut nodes = Vec::with_capacity(started.len());
    for ((_, path), node) in running.iter().zip(started) {
        nodes.push(node.with_context(|| format!("starting {}", path.display()))?);
    }
    println!();
    for ((index, _), node) in running.iter().zip(&nodes) {
        if node.has_halted() {
            println!("  validator {index}   halted while opening its data (see the log); its API answers 503");
        } else {
            println!("  validator {index}   API and dashboard: http://{}", node.api_address());
        }
    }
    for index in &args.except {
        println!("  validator {index}   not started here: tally start --config {}", files.configs[*index].display());
    }
    let first = format!("http://{}", nodes[0].api_address());
    for key in &files.client_keys {
        println!("  client key    {}", key.display());
    }
    if let Some(token) = &files.gateway_token {
        println!("  gateway token {token}");
    }
    if let Some(key) = files.client_keys.first() {
        println!();
        println!("try:");
        println!("  tally create-account --id 1 --ledger 1 --code 10 --validator {first} --key {}", key.display());
        println!("  tally account 1 --validator {first}");
    }
    println!();
    println!("Ctrl-C stops the cluster; `tally dev --dir {}` resumes it.", args.dir.display());
    wait_for_stop(&nodes, false)?;
    // Stop every validator at once, each on its own thread.
    let results: Vec<_> = std::thread::scope(|scope| {
        let stopping: Vec<_> = nodes.into_iter().map(|node| scope.spawn(move || node.stop())).collect();
        stopping.into_iter().map(|handle| handle.join().expect("a stop does not panic")).collect()
    });
    for result in results {
        result?;
    }
    println!("stopped");
    Ok(())
}

/// Blocks until Ctrl-C (SIGINT) or SIGTERM, or until a validator's runtime ends on its own.
/// Waits for Ctrl-C or SIGTERM. With `end_on_halt` (one validator per process, `tally start`), a
/// validator that halts ends the wait with an error, so the process exits non-zero and a
/// supervisor sees it; `tally dev` keeps the others running and the halted one answering 503.
fn wait_for_stop(nodes: &[RunningNode], end_on_halt: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let crashed = async {
            loop {
                if nodes.iter().any(RunningNode::has_exited) {
                    return false;
                }
                if end_on_halt && nodes.iter().any(RunningNode::has_halted) {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {},
            halted = crashed => if halted {
                bail!(
                    "the validator halted (the log above says why) and stopped voting; fix the cause (a full disk; \
                     damaged data: move the data directory aside, keeping its `validator-votes` directory) and start it again: it catches up from its peers"
                )
            } else {
                bail!("a validator's runtime ended on its own (see the log above)")
            },
        }
        tracing::info!("stopping");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn except_names_validators_of_the_cluster_and_leaves_one() {
        check_except(&[], 4).unwrap();
        check_except(&[3], 4).unwrap();
        check_except(&[0, 1, 2], 4).unwrap();
        let error = check_except(&[9], 4).unwrap_err().to_string();
        assert!(error.contains("--except 9") && error.contains("0 to 3"), "{error}");
        let error = check_except(&[0, 1, 2, 3], 4).unwrap_err().to_string();
        assert!(error.contains("no validator to run"), "{error}");
        assert!(check_except(&[0], 1).is_err());
    }
}
