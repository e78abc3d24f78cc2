//! `tally backup`, `tally backup verify` and `tally restore`: a validator's newest proven
//! snapshot saved to a file (`GET /v1/backup`, the format in `tally_chain::backup`), checked
//! offline against a genesis, and seeded into an empty data directory.
//!
//! The download checks each chunk against its hash as it arrives and keeps one chunk in memory
//! at a time. Verifying proves the snapshot: the certified header of the block above it is
//! checked against the genesis validators' signatures, each chunk against its hash, and the
//! restored state's digest against the header, with the same checks a validator makes of a
//! peer's snapshot (`tally_chain::snapshot::check_snapshot_proof` and `check_snapshot_state`).
//! That last check restores the whole state in memory, as a validator does when it adopts one.

use anyhow::{Context as _, bail};
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tally_chain::backup::{BackupError, BackupHeader, FIXED_SIZE, PROOF_SIZE_MAX};
use tally_chain::certified::CertifiedHeader;
use tally_chain::genesis::Founding;
use tally_chain::snapshot::{check_snapshot_proof, check_snapshot_state};
use tally_chain::{ChainState, Genesis};
use tally_client::ClientError;
use tally_node::NodeConfig;
use tally_node::genesis_file::GenesisFile;

pub const BACKUP_EXAMPLES: &str = "\
Examples:
  tally backup --validator http://127.0.0.1:7001 --out tally.backup
  tally backup verify tally.backup --genesis tally-dev/genesis.json";

pub const RESTORE_EXAMPLES: &str = "\
Example (a replacement machine for validator 3, its data directory empty):
  tally restore tally.backup --config tally-dev/validator-3.toml
  tally start --config tally-dev/validator-3.toml

Each founder of a chain re-founded from a backup (tally init --found-from) is seeded from that
same backup, before the new chain first starts:
  tally restore tally.backup --config new/validator-0.toml --first-start
A validator that joins the re-founded chain later is restored, without --first-start, from a
backup of the new chain (or from the founding one while the new chain's state is unchanged).";

/// How long the download may wait for the validator's next bytes.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,

    /// The validator to take the backup from (its HTTP API).
    #[arg(long, value_name = "URL")]
    validator: Option<String>,

    /// The file to write (it must not exist yet).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum BackupCommand {
    /// Check a backup offline against a genesis: print the chain and height it holds, proven by a
    /// quorum of the genesis validators, or `unverified: why` with exit status 3.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The backup file.
    file: PathBuf,

    /// The cluster's genesis file.
    #[arg(long, value_name = "FILE", env = "TALLY_GENESIS")]
    genesis: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    file: PathBuf,

    /// The config of the validator to restore (its key, genesis and data directory, which must
    /// be empty or absent, or hold only its old `*-votes` directory).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,

    /// This validator is one of the founders of a re-founded chain that has not run yet (`tally
    /// init --found-from`): it may vote at once. Without it a validator restored from a backup
    /// holds its votes back until it hears its peers certify a view, so that it never contradicts
    /// a vote its key signed before; founders all waiting for one another would wait for good.
    #[arg(long)]
    first_start: bool,
}

/// `tally backup` and `tally backup verify`.
pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    if let Some(BackupCommand::Verify(verify)) = args.command {
        let genesis = GenesisFile::load(&verify.genesis)
            .with_context(|| format!("reading the genesis to verify against ({})", verify.genesis.display()))?;
        let verified = verify_file(&verify.file, genesis.genesis())?;
        println!("{}", verified.line());
        return Ok(());
    }
    let (Some(validator), Some(out)) = (args.validator, args.out) else {
        bail!("tally backup needs --validator URL and --out FILE (or: tally backup verify FILE --genesis G)");
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(download(validator.trim_end_matches('/'), &out))
}

/// The bytes of the answer, taken as the caller needs them.
struct Incoming {
    response: reqwest::Response,
    pending: Vec<u8>,
    received: u64,
}

impl Incoming {
    /// The next `count` bytes; `what` names them if the answer ends first.
    async fn take(&mut self, count: usize, what: &str) -> anyhow::Result<Vec<u8>> {
        while self.pending.len() < count {
            let chunk = self.response.chunk().await.with_context(|| {
                format!("the validator's answer broke off after {} bytes, within {what}", self.received)
            })?;
            let Some(chunk) = chunk else {
                bail!(
                    "the validator's answer ended after {} bytes, within {what} (its log says why; take the backup again)",
                    self.received
                );
            };
            self.received += chunk.len() as u64;
            self.pending.extend_from_slice(&chunk);
        }
        let rest = self.pending.split_off(count);
        Ok(std::mem::replace(&mut self.pending, rest))
    }
}

/// Reads the backup header from the answer, checking every bound before taking more bytes.
async fn read_header(incoming: &mut Incoming) -> anyhow::Result<BackupHeader> {
    let mut bytes = incoming.take(FIXED_SIZE, "the backup header").await?;
    // Checks the magic, version, length and chunk count; only the hashes are missing.
    match BackupHeader::read(&mut bytes.as_slice()) {
        Err(BackupError::Truncated(_)) => {}
        Err(error) => return Err(error.into()),
        Ok(_) => unreachable!("a header with no hashes and no proof"),
    }
    let count = u32::from_be_bytes(bytes[FIXED_SIZE - 4..].try_into().expect("4 bytes")) as usize;
    bytes.extend(incoming.take(count * 32 + 4, "the chunk hashes").await?);
    let proof_length = u32::from_be_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
    if proof_length > PROOF_SIZE_MAX {
        bail!(BackupError::Malformed(format!("a certified header of {proof_length} bytes")));
    }
    bytes.extend(incoming.take(proof_length as usize, "the certified header").await?);
    Ok(BackupHeader::read(&mut bytes.as_slice())?)
}

/// `tally backup --validator URL --out FILE`.
async fn download(validator: &str, out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{} exists already; a backup never overwrites a file", out.display());
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(READ_TIMEOUT)
        .build()
        .context("an HTTP client")?;
    let url = format!("{validator}/v1/backup");
    let response = http.get(&url).send().await.with_context(|| format!("asking {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|json| json["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{url} answered {status}: {message}");
    }
    let mut incoming = Incoming { response, pending: Vec::new(), received: 0 };
    let header = read_header(&mut incoming).await?;
    // Written beside the target and renamed once whole, so a broken download leaves no FILE.
    let partial =
        out.with_file_name(format!(".{}.partial", out.file_name().and_then(|name| name.to_str()).unwrap_or("backup")));
    let result = async {
        let mut file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        file.write_all(&header.encode()).with_context(|| format!("writing {}", partial.display()))?;
        for index in 0..header.chunk_count() {
            let what = format!("chunk {index} of {}", header.chunk_count());
            let chunk = incoming.take(header.chunk_length(index), &what).await?;
            header.check_chunk(index, &chunk)?;
            file.write_all(&chunk).with_context(|| format!("writing {}", partial.display()))?;
        }
        if !incoming.pending.is_empty() || incoming.response.chunk().await?.is_some() {
            bail!(BackupError::TrailingBytes);
        }
        file.sync_all().with_context(|| format!("syncing {}", partial.display()))?;
        std::fs::rename(&partial, out).with_context(|| format!("renaming {} to {}", partial.display(), out.display()))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result?;
    println!(
        "wrote a backup of chain {} at height {} ({} bytes, {} chunks, each checked against its hash) to {}",
        header.chain_id,
        header.height,
        incoming.received,
        header.chunk_count(),
        out.display()
    );
    println!("check it offline with: tally backup verify {} --genesis GENESIS", out.display());
    Ok(())
}

/// A backup proven against a genesis.
struct Verified {
    chain_id: u64,
    height: u64,
    signers: usize,
    validators: usize,
    snapshot: Vec<u8>,
    /// The certified header of the block above the snapshot.
    above: CertifiedHeader,
}

impl Verified {
    fn line(&self) -> String {
        format!(
            "verified: backup of chain {} at height {}, proven by {} of {} validators",
            self.chain_id, self.height, self.signers, self.validators
        )
    }
}

/// A backup file opened and its header read, with the two ways reading it fails: a file that is
/// not a whole, proven backup is `ClientError::Unverified` (status 3); one that cannot be read
/// is an error.
struct BackupFile<'p> {
    path: &'p Path,
    reader: BufReader<std::fs::File>,
    header: BackupHeader,
}

impl<'p> BackupFile<'p> {
    fn open(path: &'p Path) -> anyhow::Result<Self> {
        let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let mut reader = BufReader::new(file);
        let header = BackupHeader::read(&mut reader).map_err(|error| refusal(path, error))?;
        Ok(Self { path, reader, header })
    }

    /// The snapshot, each chunk checked against its hash.
    fn read_snapshot(&mut self) -> anyhow::Result<Vec<u8>> {
        self.header.read_snapshot(&mut self.reader).map_err(|error| refusal(self.path, error))
    }
}

fn unverified(path: &Path, reason: String) -> ClientError {
    ClientError::Unverified { failures: vec![format!("{}: {reason}", path.display())] }
}

fn refusal(path: &Path, error: BackupError) -> anyhow::Error {
    match error {
        BackupError::Io(error) => anyhow::Error::from(error).context(format!("reading {}", path.display())),
        other => unverified(path, other.to_string()).into(),
    }
}

/// Checks a backup file against `genesis`. A file that is not a whole, proven backup of this
/// chain is `ClientError::Unverified` (status 3); one that cannot be read is an error.
fn verify_file(path: &Path, genesis: &Genesis) -> anyhow::Result<Verified> {
    let mut file = BackupFile::open(path)?;
    let unverified = |reason: String| unverified(path, reason);
    let header = &file.header;
    if header.chain_id != genesis.chain_id() {
        return Err(unverified(format!(
            "a backup of chain {}, not of this genesis's chain {}",
            header.chain_id,
            genesis.chain_id()
        ))
        .into());
    }
    let (chain_id, height) = (header.chain_id, header.height);
    let above = CertifiedHeader::decode(&header.proof, genesis).map_err(|error| unverified(error.to_string()))?;
    check_snapshot_proof(genesis, height, &above).map_err(|error| unverified(error.to_string()))?;
    let snapshot = file.read_snapshot()?;
    check_snapshot_state(height, &snapshot, &above).map_err(|error| unverified(error.to_string()))?;
    Ok(Verified {
        chain_id,
        height,
        signers: above.signers(genesis).len(),
        validators: genesis.validators().len(),
        snapshot,
        above,
    })
}

/// The chain a backup file says it is of (not yet checked).
fn read_backup_chain(path: &Path) -> anyhow::Result<u64> {
    Ok(BackupFile::open(path)?.header.chain_id)
}

/// The state a backup holds, checked against what a re-founded chain's genesis names: the
/// source chain, height and block, and the digest of the state re-founded from it. The genesis
/// vouches for the state, so the source chain's genesis is not needed here.
fn founding_state(path: &Path, founding: &Founding) -> anyhow::Result<ChainState> {
    let mut file = BackupFile::open(path)?;
    let unverified = |reason: String| unverified(path, reason);
    let header = &file.header;
    if (header.chain_id, header.height) != (founding.chain_id, founding.height) {
        return Err(unverified(format!(
            "a backup of chain {} at height {}, but this chain was re-founded from chain {} at height {}",
            header.chain_id, header.height, founding.chain_id, founding.height
        ))
        .into());
    }
    let snapshot = file.read_snapshot()?;
    let state = ChainState::restore(&snapshot).map_err(|error| unverified(error.to_string()))?;
    if state.height() != founding.height || state.block() != founding.block {
        return Err(unverified(format!(
            "its state is of block {} at height {}, not the founding block {}",
            state.block(),
            state.height(),
            founding.block
        ))
        .into());
    }
    if state.refounded_state_digest() != founding.state_digest {
        return Err(
            unverified("its state is not the one the genesis was founded on (state digest differs)".into()).into()
        );
    }
    Ok(state)
}

/// What a chain re-founded from the backup at `path` starts from: the backup verified against
/// `source`, the genesis of its chain (`tally init --found-from`).
pub fn founding_from(path: &Path, source: &Genesis) -> anyhow::Result<(Founding, String)> {
    let verified = verify_file(path, source)?;
    let state = ChainState::restore(&verified.snapshot).map_err(|error| anyhow::anyhow!("{error}"))?;
    let founding = Founding {
        chain_id: verified.chain_id,
        height: verified.height,
        block: state.block(),
        state_digest: state.refounded_state_digest(),
    };
    Ok((founding, verified.line()))
}

/// `tally restore FILE --config CONFIG`.
pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let empty = tally_node::node::holds_at_most_a_vote_record(&config.data_dir)
        .with_context(|| format!("reading {}", config.data_dir.display()))?;
    if !empty {
        bail!(
            "the data directory {} (data_dir of {}) is not empty: a restore never overwrites a validator's data; \
             point data_dir at a new directory, or move this one aside (a restore may keep its `*-votes` \
             directory, the record of the votes its key signed: copy that into the new one)",
            config.data_dir.display(),
            args.config.display()
        );
    }
    let genesis = config.genesis.genesis();
    if let Some(founding) = genesis.founding()
        && read_backup_chain(&args.file)? == founding.chain_id
    {
        let state = founding_state(&args.file, founding)?;
        println!(
            "verified: backup of chain {} at height {}, the state this chain was re-founded from (its digest is \
             the genesis's founding state digest)",
            founding.chain_id, founding.height
        );
        let state = state.refound(&genesis.block());
        tally_node::node::seed_snapshot(&config.data_dir, 0, state.snapshot(), None, args.first_start)?;
        println!(
            "restored: {} holds the founding state of chain {}; start the validator with: tally start --config {}",
            config.data_dir.display(),
            genesis.chain_id(),
            args.config.display()
        );
        return Ok(());
    }
    if args.first_start {
        bail!(
            "--first-start is for the founders of a re-founded chain, seeded from the backup its genesis names; \
             this is a backup of chain {}{}",
            read_backup_chain(&args.file)?,
            genesis.founding().map_or(String::new(), |founding| format!(", not of chain {}", founding.chain_id))
        );
    }
    let verified = verify_file(&args.file, genesis)?;
    println!("{}", verified.line());
    let height = verified.height;
    tally_node::node::seed_snapshot(&config.data_dir, height, verified.snapshot, Some(&verified.above), false)?;
    println!(
        "restored: {} holds the state at height {height}; start the validator with: tally start --config {} (it \
         fetches the blocks above from its peers)",
        config.data_dir.display(),
        args.config.display()
    );
    Ok(())
}
