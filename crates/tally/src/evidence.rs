//! `tally evidence verify`: checks evidence of misbehaviour offline, against a genesis, trusting
//! neither the validator that served it nor whoever passed it on. FILE holds a saved
//! `GET /v1/evidence` answer, one piece of it (`{"kind", "view", "validator", "proof"}`), or a
//! piece's proof bytes as hex. Each piece's two signatures are checked against the genesis
//! validators and chain; the command prints, for each, which validator is proven to have lied,
//! how, and in which view. A piece that does not verify, or whose JSON says something its
//! proof does not, makes the command print `unverified: ...` and exit with status 3 (as a
//! receipt that does not verify does).

use anyhow::Context as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tally_chain::Genesis;
use tally_chain::evidence::Evidence;
use tally_client::ClientError;
use tally_node::genesis_file::GenesisFile;

/// `tally evidence`'s subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum EvidenceCommand {
    /// Check saved evidence of misbehaviour offline against a genesis: print the validator each
    /// piece proves lied, how and in which view, or `unverified: why` with exit status 3.
    /// FILE holds a `GET /v1/evidence` answer, one piece of it, or a piece's proof as hex.
    #[command(after_help = "Example:\n  curl -s http://127.0.0.1:8080/v1/evidence > evidence.json\n  \
                      tally evidence verify evidence.json --genesis tally-dev/genesis.json")]
    Verify(EvidenceVerifyArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct EvidenceVerifyArgs {
    /// The evidence: a `GET /v1/evidence` answer, one piece of it, or a proof as hex.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The cluster's genesis file.
    #[arg(long, value_name = "FILE", env = "TALLY_GENESIS")]
    pub genesis: PathBuf,
}

pub fn run(command: EvidenceCommand) -> anyhow::Result<()> {
    match command {
        EvidenceCommand::Verify(args) => verify_file(&args),
    }
}

/// One piece as FILE gives it: the proof's bytes, and what the JSON around them claims.
struct Claimed {
    /// Where in FILE (for messages).
    place: String,
    proof: Result<Vec<u8>, String>,
    kind: Option<String>,
    view: Option<String>,
    validator: Option<String>,
}

fn verify_file(args: &EvidenceVerifyArgs) -> anyhow::Result<()> {
    let genesis = GenesisFile::load(&args.genesis)
        .with_context(|| format!("reading the genesis to verify against ({})", args.genesis.display()))?;
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let (chain_id, claimed) = read_pieces(&args.file, &text)?;
    let genesis = genesis.genesis();
    let unverified = |failures: Vec<String>| ClientError::Unverified { failures };
    if let Some(chain_id) = chain_id
        && chain_id != genesis.chain_id().to_string()
    {
        return Err(unverified(vec![format!(
            "{}: the answer is from chain {chain_id}, the genesis is of chain {}",
            args.file.display(),
            genesis.chain_id()
        )])
        .into());
    }
    if claimed.is_empty() {
        println!("no evidence of misbehaviour in {}", args.file.display());
        return Ok(());
    }
    let mut failures = Vec::new();
    let mut proven = 0;
    for piece in &claimed {
        match check(piece, genesis) {
            Ok(line) => {
                println!("{line}");
                proven += 1;
            }
            Err(why) => failures.push(format!("{}: {why}", piece.place)),
        }
    }
    if !failures.is_empty() {
        return Err(unverified(failures).into());
    }
    println!(
        "verified: {proven} piece(s) of evidence, each signed twice by the validator it names, against the genesis of chain {}",
        genesis.chain_id()
    );
    Ok(())
}

/// The chain id the answer names (if it is a whole answer), and its pieces.
fn read_pieces(file: &Path, text: &str) -> anyhow::Result<(Option<String>, Vec<Claimed>)> {
    let place = |suffix: String| format!("{}{suffix}", file.display());
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        // Not JSON: one proof as hex.
        let proof = tally_client::wire::from_hex(text.trim()).ok_or_else(|| "neither JSON nor hex".to_string());
        return Ok((
            None,
            vec![Claimed { place: place(String::new()), proof, kind: None, view: None, validator: None }],
        ));
    };
    let claimed = |value: &Value, place: String| {
        let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
        let proof = match field("proof") {
            Some(hex) => tally_client::wire::from_hex(&hex).ok_or_else(|| "its proof is not hex".to_string()),
            None => Err("it has no proof".to_string()),
        };
        Claimed { place, proof, kind: field("kind"), view: field("view"), validator: field("validator") }
    };
    if let Some(pieces) = json.get("evidence") {
        let pieces = pieces.as_array().with_context(|| format!("{}: `evidence` is not a list", file.display()))?;
        let chain_id = json.get("chain_id").and_then(Value::as_str).map(str::to_string);
        let claimed = pieces.iter().enumerate().map(|(index, piece)| claimed(piece, place(format!(" piece {index}"))));
        return Ok((chain_id, claimed.collect()));
    }
    if json.get("proof").is_some() {
        return Ok((None, vec![claimed(&json, place(String::new()))]));
    }
    anyhow::bail!("{}: neither a GET /v1/evidence answer nor a piece of one (no `evidence` or `proof`)", file.display())
}

/// Checks one piece: its proof decodes, its signatures verify against the genesis, and the
/// JSON around it says what the proof proves. Returns the line to print.
fn check(piece: &Claimed, genesis: &Genesis) -> Result<String, String> {
    let bytes = piece.proof.clone()?;
    let evidence = Evidence::decode(&bytes).map_err(|error| error.to_string())?;
    let accused = evidence.verify(genesis).map_err(|error| error.to_string())?;
    let accused = tally_client::wire::hex(accused.as_ref());
    let (kind, view) = (evidence.kind(), evidence.view());
    let differs = |field: &str, said: &str, proven: &str| {
        format!("its {field} says {said}, but its proof is of {proven}: the JSON around the proof was altered")
    };
    if let Some(said) = &piece.kind
        && said != kind.name()
    {
        return Err(differs("kind", said, kind.name()));
    }
    if let Some(said) = &piece.view
        && *said != view.to_string()
    {
        return Err(differs("view", said, &view.to_string()));
    }
    if let Some(said) = &piece.validator
        && !said.eq_ignore_ascii_case(&accused)
    {
        return Err(differs("validator", said, &accused));
    }
    Ok(format!("proven: validator {accused} {} in view {view} ({})", kind.describe(), kind.name()))
}
