//! The client commands of `tally`: create accounts and transfers, look them up, query, and ask a
//! cluster for its status, through `tally-client` (signed requests, failover, safe retries).
//!
//! Every command takes the validators (`--validator URL`, repeatable, or `TALLY_VALIDATORS`
//! with commas), the client key file for writes (`--key FILE` or `TALLY_CLIENT_KEY`), and, for
//! writes, the chain id (`--chain-id`, `TALLY_CHAIN_ID`, or else the id the first validator that
//! answers reports). These options belong to the client commands only, after the command's
//! name or anywhere among its arguments. Results print as a table, or as JSON with `--json`.
//!
//! Answers are verified, not taken on the answering validator's word: a write's outcome by its
//! receipt, a read of accounts, transfers or balance history by a state receipt (`?proof=true`), each checked
//! against the genesis (`--genesis FILE`, `TALLY_GENESIS`, or the genesis.json beside the key
//! file), and the command prints `verified at height H by N of M validators`. If no validator's
//! receipt verifies, the command prints a message starting with `unverified:` and exits with
//! status 3. `--no-verify` skips the check. The status carries no proof.
//!
//! A wrong or unreachable URL fails at once, naming the URL and what went wrong there; reads
//! and writes retry alike, as `tally_client::ClientOptions` describes.

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use tally_chain::RequestResult;
use tally_chain::receipt::OutcomeReceipt;
use tally_chain::state_receipt::StateReceipt;
use tally_client::{BatchOutcome, Client, ClientError, ClusterStatus, Proven, RequestReceipt};
use tally_ledger::{
    Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags, CreateAccountResult,
    CreateTransferResult, QueryFilter, QueryFilterFlags, Transfer, TransferFlags,
};
use tally_node::genesis_file::GenesisFile;

/// The heading of the shared client options in `--help`.
const CLIENT_HEADING: &str = "Cluster options";

// Where the cluster is and who the client is (shared by every client command, and added to
// each by `add_cluster_options`). A plain comment: clap would take a doc comment for the about
// text of every command the options are added to.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// A validator's API URL (http://HOST:PORT); repeat it to fail over in order.
    #[arg(long = "validator", value_name = "URL", env = "TALLY_VALIDATORS", value_delimiter = ',', help_heading = CLIENT_HEADING)]
    pub validators: Vec<String>,

    /// The client's private key file (64 hex digits, mode 0600), for commands that write.
    #[arg(long, value_name = "FILE", env = "TALLY_CLIENT_KEY", help_heading = CLIENT_HEADING)]
    pub key: Option<PathBuf>,

    /// The chain id that writes are signed for [default: the one the first validator that
    /// answers reports].
    #[arg(long, value_name = "ID", env = "TALLY_CHAIN_ID", help_heading = CLIENT_HEADING)]
    pub chain_id: Option<u64>,

    /// Print JSON instead of a table.
    #[arg(long, help_heading = CLIENT_HEADING)]
    pub json: bool,

    /// The cluster's genesis file, that answers (writes' outcomes, accounts, transfers) are
    /// verified against [default: the genesis.json beside the --key file, as `tally dev` and
    /// `tally init` write them].
    #[arg(long, value_name = "FILE", env = "TALLY_GENESIS", help_heading = CLIENT_HEADING)]
    pub genesis: Option<PathBuf>,

    /// Take answers on the answering validator's word instead of verifying their receipts
    /// against the genesis.
    #[arg(long, help_heading = CLIENT_HEADING)]
    pub no_verify: bool,
}

/// `tally verify`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The receipt: hex, or its bytes.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The cluster's genesis file.
    #[arg(long, value_name = "FILE", env = "TALLY_GENESIS")]
    pub genesis: PathBuf,
}

/// `tally verify`: checks a saved receipt against a genesis and prints what it proves.
pub fn verify_file(args: &VerifyArgs) -> anyhow::Result<()> {
    let genesis = GenesisFile::load(&args.genesis)
        .with_context(|| format!("reading the genesis to verify against ({})", args.genesis.display()))?;
    let genesis = genesis.genesis();
    let raw = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let bytes = tally_client::wire::from_hex(text.trim()).unwrap_or(raw);
    let unverified =
        |reason: String| ClientError::Unverified { failures: vec![format!("{}: {reason}", args.file.display())] };
    let receipt = match OutcomeReceipt::decode(&bytes, genesis) {
        Ok(receipt) => receipt,
        Err(outcome_error) => {
            let Ok(state) = StateReceipt::decode(&bytes, genesis) else {
                return Err(unverified(format!("{outcome_error} (nor is it a state receipt)")).into());
            };
            let verified = state.verify(genesis).map_err(|error| unverified(error.to_string()))?;
            let accounts: Vec<Account> = state.proof.accounts.iter().map(|(account, _)| *account).collect();
            let transfers: Vec<Transfer> = state.proof.transfers.iter().map(|(transfer, _)| *transfer).collect();
            let balances: Vec<AccountBalance> = state.proof.balances.iter().map(|(balance, _)| *balance).collect();
            let mut text = format!(
                "{} account(s), {} transfer(s) and {} balance history entries as of height {}\n",
                accounts.len(),
                transfers.len(),
                balances.len(),
                verified.height
            );
            if !accounts.is_empty() {
                text.push_str(&accounts_table(&accounts));
            }
            if !transfers.is_empty() {
                text.push_str(&transfers_table(&transfers));
            }
            if !balances.is_empty() {
                text.push_str(&balances_table(&balances));
            }
            writeln!(text, "{}", verified_text(verified.height, verified.signers.len(), verified.validators))
                .expect("writing to a String");
            print!("{text}");
            return Ok(());
        }
    };
    let verified = receipt.verify(genesis).map_err(|error| unverified(error.to_string()))?;
    let mut text = format!(
        "request {} of client {} final at height {}\n",
        receipt.key.id,
        tally_client::wire::hex(receipt.key.client.as_ref()),
        verified.height
    );
    writeln!(text, "{}", verified_text(verified.height, verified.signers.len(), verified.validators))
        .expect("writing to a String");
    fn rows<R: EventResult>(results: &[R]) -> Vec<Vec<String>> {
        let row = |(index, result): (usize, &R)| {
            vec![index.to_string(), result.status_name().to_string(), result.timestamp().to_string()]
        };
        results.iter().enumerate().map(row).collect()
    }
    let rows = match &receipt.outcome.result {
        RequestResult::Accounts(results) => rows(results),
        RequestResult::Transfers(results) => rows(results),
        RequestResult::Refused(error) => {
            writeln!(text, "refused as a whole: {error}").expect("writing to a String");
            Vec::new()
        }
    };
    text.push_str(&table(&["index", "status", "timestamp"], rows.into_iter()));
    print!("{text}");
    Ok(())
}

/// The genesis file answers are verified against: `--genesis`, or the genesis.json beside the
/// key file if there is one; `None` with `--no-verify`.
fn genesis_path(args: &ClientArgs, key: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    if args.no_verify {
        return Ok(None);
    }
    if let Some(path) = &args.genesis {
        return Ok(Some(path.clone()));
    }
    if let Some(key) = key {
        let beside = key.parent().unwrap_or(Path::new(".")).join("genesis.json");
        if beside.is_file() {
            return Ok(Some(beside));
        }
    }
    bail!(
        "cannot verify the answer: no genesis file; pass --genesis FILE (or set TALLY_GENESIS), or --no-verify to take the validator's word"
    )
}

/// Adds the cluster options ([`ClientArgs`]) to each client command of `command`, and to no
/// other command: `tally init --help` does not list `--validator`.
pub fn add_cluster_options(command: clap::Command) -> clap::Command {
    use clap::{Args as _, Subcommand as _};
    let names: Vec<String> = ClientCommand::augment_subcommands(clap::Command::new("client"))
        .get_subcommands()
        .map(|subcommand| subcommand.get_name().to_string())
        .collect();
    assert!(!names.is_empty());
    names.iter().fold(command, |command, name| command.mut_subcommand(name, ClientArgs::augment_args))
}

/// The cluster options given to the client command that `matches` (the whole command line's)
/// ran.
pub fn cluster_args(matches: &clap::ArgMatches) -> Result<ClientArgs, clap::Error> {
    use clap::FromArgMatches as _;
    let (_, command) = matches.subcommand().expect("a client command was given");
    ClientArgs::from_arg_matches(command)
}

/// The fields of a new account.
#[derive(Debug, Clone, clap::Args)]
pub struct AccountFields {
    /// The account's id (a u128, not 0).
    #[arg(long)]
    pub id: u128,
    /// The ledger (currency or asset) the account keeps; transfers stay within one ledger.
    #[arg(long)]
    pub ledger: u32,
    /// What kind of account this is, for the application (not 0).
    #[arg(long)]
    pub code: u16,
    #[arg(long, default_value_t = 0)]
    pub user_data_128: u128,
    #[arg(long, default_value_t = 0)]
    pub user_data_64: u64,
    #[arg(long, default_value_t = 0)]
    pub user_data_32: u32,
    /// Flag names, comma-separated: linked, debits_must_not_exceed_credits,
    /// credits_must_not_exceed_debits, history, imported, closed.
    #[arg(long, value_delimiter = ',', value_name = "FLAGS")]
    pub flags: Vec<String>,
}

/// The fields of a new transfer.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferFields {
    /// The transfer's id (a u128, not 0).
    #[arg(long)]
    pub id: u128,
    /// The account debited.
    #[arg(long = "debit", value_name = "ACCOUNT")]
    pub debit_account_id: u128,
    /// The account credited.
    #[arg(long = "credit", value_name = "ACCOUNT")]
    pub credit_account_id: u128,
    /// How much to move, in the ledger's smallest unit.
    #[arg(long)]
    pub amount: u128,
    /// The ledger of both accounts.
    #[arg(long)]
    pub ledger: u32,
    /// Why the transfer happens, for the application (not 0).
    #[arg(long)]
    pub code: u16,
    /// The pending transfer that this one posts or voids.
    #[arg(long, default_value_t = 0)]
    pub pending_id: u128,
    /// Seconds until a pending transfer expires (0: never).
    #[arg(long, default_value_t = 0)]
    pub timeout: u32,
    #[arg(long, default_value_t = 0)]
    pub user_data_128: u128,
    #[arg(long, default_value_t = 0)]
    pub user_data_64: u64,
    #[arg(long, default_value_t = 0)]
    pub user_data_32: u32,
    /// Flag names, comma-separated: linked, pending, post_pending_transfer,
    /// void_pending_transfer, balancing_debit, balancing_credit, closing_debit, closing_credit,
    /// imported.
    #[arg(long, value_delimiter = ',', value_name = "FLAGS")]
    pub flags: Vec<String>,
}

/// Which of an account's transfers or balances.
#[derive(Debug, Clone, clap::Args)]
pub struct AccountFilterArgs {
    /// The account.
    pub account_id: u128,
    /// The most results (at most 8,190).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Only transfers that debit the account (with --credits: both, the default).
    #[arg(long)]
    pub debits: bool,
    /// Only transfers that credit the account.
    #[arg(long)]
    pub credits: bool,
    /// Newest first.
    #[arg(long)]
    pub reversed: bool,
    #[arg(long, default_value_t = 0)]
    pub timestamp_min: u64,
    #[arg(long, default_value_t = 0)]
    pub timestamp_max: u64,
    #[arg(long, default_value_t = 0)]
    pub code: u16,
    #[arg(long, default_value_t = 0)]
    pub user_data_128: u128,
    #[arg(long, default_value_t = 0)]
    pub user_data_64: u64,
    #[arg(long, default_value_t = 0)]
    pub user_data_32: u32,
}

/// Which accounts or transfers a query matches: every field given must equal.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryFilterArgs {
    #[arg(long, default_value_t = 0)]
    pub ledger: u32,
    #[arg(long, default_value_t = 0)]
    pub code: u16,
    #[arg(long, default_value_t = 0)]
    pub user_data_128: u128,
    #[arg(long, default_value_t = 0)]
    pub user_data_64: u64,
    #[arg(long, default_value_t = 0)]
    pub user_data_32: u32,
    #[arg(long, default_value_t = 0)]
    pub timestamp_min: u64,
    #[arg(long, default_value_t = 0)]
    pub timestamp_max: u64,
    /// The most results (at most 8,190).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Newest first.
    #[arg(long)]
    pub reversed: bool,
}

/// The client commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClientCommand {
    /// Create one account.
    #[command(after_help = "Example:\n  tally create-account --id 1 --ledger 1 --code 10 --flags history")]
    CreateAccount {
        #[command(flatten)]
        account: AccountFields,
        /// The request id, to retry safely: the same id applies once [default: random].
        #[arg(long)]
        request_id: Option<u128>,
    },

    /// Create the accounts of a JSON file: a list of accounts, or {"accounts": [...]}, in the API's
    /// form (u128 and u64 as decimal strings). Batches over 8,190 go as several requests.
    #[command(
        after_help = "Example:\n  echo '[{\"id\": \"1\", \"ledger\": 1, \"code\": 10}, {\"id\": \"2\", \"ledger\": 1, \
                            \"code\": 10}]' > accounts.json\n  tally create-accounts --file accounts.json"
    )]
    CreateAccounts {
        /// The JSON file ("-" for standard input).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The request id (only for batches of one request) [default: random].
        #[arg(long)]
        request_id: Option<u128>,
    },

    /// Create one transfer.
    #[command(
        after_help = "Examples:\n  tally transfer --id 100 --debit 1 --credit 2 --amount 25 --ledger 1 --code 1\n  \
                      tally transfer --id 101 --debit 1 --credit 2 --amount 25 --ledger 1 --code 1 --flags pending \
                      --timeout 60"
    )]
    Transfer {
        #[command(flatten)]
        transfer: TransferFields,
        /// The request id, to retry safely: the same id applies once [default: random].
        #[arg(long)]
        request_id: Option<u128>,
    },

    /// Create the transfers of a JSON file: a list of transfers, or {"transfers": [...]}.
    #[command(
        after_help = "Example:\n  echo '[{\"id\": \"100\", \"debit_account_id\": \"1\", \"credit_account_id\": \"2\", \
                            \"amount\": \"25\", \"ledger\": 1, \"code\": 1}]' > transfers.json\n  \
                            tally create-transfers --file transfers.json"
    )]
    CreateTransfers {
        /// The JSON file ("-" for standard input).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The request id (only for batches of one request) [default: random].
        #[arg(long)]
        request_id: Option<u128>,
    },

    /// Show one account.
    #[command(after_help = "Example:\n  tally account 1")]
    Account {
        /// The account's id.
        id: u128,
    },

    /// Show several accounts (ids that do not exist are left out).
    #[command(after_help = "Example:\n  tally lookup-accounts 1 2 3")]
    LookupAccounts {
        /// The accounts' ids.
        #[arg(required = true)]
        ids: Vec<u128>,
    },

    /// Show one transfer.
    #[command(after_help = "Example:\n  tally lookup-transfer 100")]
    LookupTransfer {
        /// The transfer's id.
        id: u128,
    },

    /// Show several transfers (ids that do not exist are left out).
    #[command(after_help = "Example:\n  tally lookup-transfers 100 101")]
    LookupTransfers {
        /// The transfers' ids.
        #[arg(required = true)]
        ids: Vec<u128>,
    },

    /// List an account's transfers.
    #[command(after_help = "Example:\n  tally account-transfers 1 --limit 10 --reversed")]
    AccountTransfers {
        #[command(flatten)]
        filter: AccountFilterArgs,
    },

    /// List an account's balance after each of its transfers (accounts with the history flag).
    #[command(after_help = "Example:\n  tally balances 1 --limit 10")]
    Balances {
        #[command(flatten)]
        filter: AccountFilterArgs,
    },

    /// Find accounts whose fields equal every field given.
    #[command(after_help = "Example:\n  tally query-accounts --ledger 1 --code 10 --limit 50")]
    QueryAccounts {
        #[command(flatten)]
        filter: QueryFilterArgs,
    },

    /// Find transfers whose fields equal every field given.
    #[command(after_help = "Example:\n  tally query-transfers --ledger 1 --user-data-64 7")]
    QueryTransfers {
        #[command(flatten)]
        filter: QueryFilterArgs,
    },

    /// Show the cluster's status as the first validator that answers sees it, or every
    /// validator's own with --each.
    #[command(
        after_help = "Example:\n  tally status --validator http://127.0.0.1:7001 --validator http://127.0.0.1:7003"
    )]
    Status {
        /// Ask every validator given, one by one.
        #[arg(long)]
        each: bool,
    },
}

/// Runs one client command and prints its result on standard output. Fails (a nonzero exit,
/// for scripts) after printing when an event was not created or a validator did not answer.
pub async fn run(args: ClientArgs, command: ClientCommand) -> anyhow::Result<()> {
    let output = execute(&args, command).await?;
    print!("{}", output.text);
    match output.problem {
        None => Ok(()),
        Some(problem) => Err(anyhow!(problem)),
    }
}

/// What a command prints, and what went wrong if part of it failed.
#[derive(Debug, Default)]
struct Output {
    text: String,
    problem: Option<String>,
}

impl Output {
    fn text(text: String) -> Self {
        Self { text, problem: None }
    }
}

async fn execute(args: &ClientArgs, command: ClientCommand) -> anyhow::Result<Output> {
    let writes = matches!(
        command,
        ClientCommand::CreateAccount { .. }
            | ClientCommand::CreateAccounts { .. }
            | ClientCommand::Transfer { .. }
            | ClientCommand::CreateTransfers { .. }
    );
    // Every answer about the ledger is verified; the status carries no proof.
    let verified_read = !writes && !matches!(command, ClientCommand::Status { .. });
    let client = connect(args, writes, verified_read).await?;
    let json = args.json;
    Ok(match command {
        ClientCommand::CreateAccount { account, request_id } => {
            create_accounts(&client, request_id, &[account_from_fields(&account)?], json).await?
        }
        ClientCommand::CreateAccounts { file, request_id } => {
            let accounts = read_events(&file, "accounts", tally_api::account_from_json)?;
            create_accounts(&client, request_id, &accounts, json).await?
        }
        ClientCommand::Transfer { transfer, request_id } => {
            create_transfers(&client, request_id, &[transfer_from_fields(&transfer)?], json).await?
        }
        ClientCommand::CreateTransfers { file, request_id } => {
            let transfers = read_events(&file, "transfers", tally_api::transfer_from_json)?;
            create_transfers(&client, request_id, &transfers, json).await?
        }
        ClientCommand::Account { id } => {
            let (mut accounts, proven) = client.lookup_accounts_proven(&[id]).await?;
            let account = accounts.pop().ok_or_else(|| anyhow!("account {id} does not exist"))?;
            Output::text(proven_output(
                tally_api::account_to_json(&account),
                account_card(&account),
                proven.as_ref(),
                json,
            ))
        }
        ClientCommand::LookupAccounts { ids } => {
            let (accounts, proven) = client.lookup_accounts_proven(&ids).await?;
            Output::text(accounts_output(&accounts, proven.as_ref(), json))
        }
        ClientCommand::LookupTransfer { id } => {
            let (mut transfers, proven) = client.lookup_transfers_proven(&[id]).await?;
            let transfer = transfers.pop().ok_or_else(|| anyhow!("transfer {id} does not exist"))?;
            Output::text(proven_output(
                tally_api::transfer_to_json(&transfer),
                transfer_card(&transfer),
                proven.as_ref(),
                json,
            ))
        }
        ClientCommand::LookupTransfers { ids } => {
            let (transfers, proven) = client.lookup_transfers_proven(&ids).await?;
            Output::text(transfers_output(&transfers, proven.as_ref(), json))
        }
        ClientCommand::AccountTransfers { filter } => {
            let (transfers, proven) = client.get_account_transfers_proven(&account_filter(&filter)).await?;
            Output::text(transfers_output(&transfers, proven.as_ref(), json))
        }
        ClientCommand::Balances { filter } => {
            let (balances, proven) = client.get_account_balances_proven(&account_filter(&filter)).await?;
            Output::text(balances_output(&balances, proven.as_ref(), json))
        }
        ClientCommand::QueryAccounts { filter } => {
            let (accounts, proven) = client.query_accounts_proven(&query_filter(&filter)).await?;
            Output::text(accounts_output(&accounts, proven.as_ref(), json))
        }
        ClientCommand::QueryTransfers { filter } => {
            let (transfers, proven) = client.query_transfers_proven(&query_filter(&filter)).await?;
            Output::text(transfers_output(&transfers, proven.as_ref(), json))
        }
        ClientCommand::Status { each: false } => Output::text(status_output(&client.status().await?, json)),
        ClientCommand::Status { each: true } => {
            let statuses = client.status_of_each().await;
            let unreachable = statuses.iter().filter(|(_, status)| status.is_err()).count();
            Output {
                text: statuses_output(&statuses, json),
                problem: (unreachable > 0)
                    .then(|| format!("{unreachable} of {} validators did not answer", statuses.len())),
            }
        }
    })
}

/// Creates `accounts` under `request_id` (a random one if none) and reports each event.
async fn create_accounts(
    client: &Client,
    request_id: Option<u128>,
    accounts: &[Account],
    json: bool,
) -> anyhow::Result<Output> {
    let outcome = match request_id {
        Some(id) => client.create_accounts_with_id(id, accounts).await?,
        None => client.create_accounts(accounts).await?,
    };
    let ids: Vec<u128> = accounts.iter().map(|account| account.id).collect();
    Ok(created_output(&outcome, &ids, json))
}

/// Creates `transfers` under `request_id` (a random one if none) and reports each event.
async fn create_transfers(
    client: &Client,
    request_id: Option<u128>,
    transfers: &[Transfer],
    json: bool,
) -> anyhow::Result<Output> {
    let outcome = match request_id {
        Some(id) => client.create_transfers_with_id(id, transfers).await?,
        None => client.create_transfers(transfers).await?,
    };
    let ids: Vec<u128> = transfers.iter().map(|transfer| transfer.id).collect();
    Ok(created_output(&outcome, &ids, json))
}

/// The client for these arguments. Reads sign nothing, so they need neither a key (a throwaway
/// one stands in) nor the chain id, and go straight to the validators.
pub async fn connect(args: &ClientArgs, writes: bool, verified_read: bool) -> anyhow::Result<Client> {
    if args.validators.is_empty() {
        bail!("no validator given: pass --validator http://HOST:PORT or set TALLY_VALIDATORS");
    }
    if !writes {
        // The chain id is only ever part of a signature.
        let client = Client::new(&args.validators, args.chain_id.unwrap_or(0), tally_client::generate_signer())?;
        if !verified_read {
            return Ok(client);
        }
        return Ok(match genesis_path(args, args.key.as_deref())? {
            Some(path) => client.verifying(load_genesis(&path)?),
            None => client,
        });
    }
    let Some(path) = &args.key else {
        bail!("this command signs a request: pass --key FILE or set TALLY_CLIENT_KEY");
    };
    let signer = tally_client::load_signer(path)?;
    let genesis = match genesis_path(args, Some(path))? {
        Some(genesis_path) => Some(load_genesis(&genesis_path)?),
        None => None,
    };
    let chain_id = match (args.chain_id, &genesis) {
        (Some(chain_id), Some(genesis)) if chain_id != genesis.chain_id() => bail!(
            "--chain-id {chain_id} is not the chain id of the genesis to verify against ({}); pass the genesis of this \
             cluster, or no --chain-id",
            genesis.chain_id()
        ),
        (Some(chain_id), _) => chain_id,
        (None, Some(genesis)) => genesis.chain_id(),
        (None, None) => {
            // The chain id goes into every signature; ask the cluster for it. A validator that
            // lied would only get the request refused: a signature for another chain verifies
            // nowhere on this one.
            let probe = Client::new(&args.validators, 0, tally_client::generate_signer())?;
            let status = probe.status().await.context("asking the cluster for its chain id (or pass --chain-id)")?;
            status.chain_id
        }
    };
    let client = Client::new(&args.validators, chain_id, signer)?;
    Ok(match genesis {
        Some(genesis) => client.verifying(genesis),
        None => client,
    })
}

fn load_genesis(path: &Path) -> anyhow::Result<tally_chain::Genesis> {
    Ok(GenesisFile::load(path)
        .with_context(|| format!("reading the genesis to verify against ({})", path.display()))?
        .genesis()
        .clone())
}

fn flags<F: Copy + std::ops::BitOr<Output = F>>(
    names: &[String],
    none: F,
    from_name: fn(&str) -> Option<F>,
    named: &[(F, &str)],
) -> anyhow::Result<F> {
    names.iter().map(|name| name.trim()).filter(|name| !name.is_empty()).try_fold(none, |flags, name| {
        let flag = from_name(name).ok_or_else(|| {
            let known: Vec<&str> = named.iter().map(|(_, name)| *name).collect();
            anyhow!("unknown flag {name:?}; the flags are {}", known.join(", "))
        })?;
        Ok(flags | flag)
    })
}

fn account_from_fields(fields: &AccountFields) -> anyhow::Result<Account> {
    Ok(Account {
        id: fields.id,
        user_data_128: fields.user_data_128,
        user_data_64: fields.user_data_64,
        user_data_32: fields.user_data_32,
        ledger: fields.ledger,
        code: fields.code,
        flags: flags(&fields.flags, AccountFlags::NONE, AccountFlags::from_name, AccountFlags::NAMED)?,
        ..Account::default()
    })
}

fn transfer_from_fields(fields: &TransferFields) -> anyhow::Result<Transfer> {
    Ok(Transfer {
        id: fields.id,
        debit_account_id: fields.debit_account_id,
        credit_account_id: fields.credit_account_id,
        amount: fields.amount,
        pending_id: fields.pending_id,
        user_data_128: fields.user_data_128,
        user_data_64: fields.user_data_64,
        user_data_32: fields.user_data_32,
        timeout: fields.timeout,
        ledger: fields.ledger,
        code: fields.code,
        flags: flags(&fields.flags, TransferFlags::NONE, TransferFlags::from_name, TransferFlags::NAMED)?,
        ..Transfer::default()
    })
}

fn account_filter(args: &AccountFilterArgs) -> AccountFilter {
    let mut flags = AccountFilterFlags::NONE;
    // Neither direction named means both, as in TigerBeetle's clients.
    flags.set(AccountFilterFlags::DEBITS, args.debits || !args.credits);
    flags.set(AccountFilterFlags::CREDITS, args.credits || !args.debits);
    flags.set(AccountFilterFlags::REVERSED, args.reversed);
    AccountFilter {
        account_id: args.account_id,
        user_data_128: args.user_data_128,
        user_data_64: args.user_data_64,
        user_data_32: args.user_data_32,
        code: args.code,
        timestamp_min: args.timestamp_min,
        timestamp_max: args.timestamp_max,
        limit: args.limit,
        flags,
    }
}

fn query_filter(args: &QueryFilterArgs) -> QueryFilter {
    QueryFilter {
        user_data_128: args.user_data_128,
        user_data_64: args.user_data_64,
        user_data_32: args.user_data_32,
        ledger: args.ledger,
        code: args.code,
        timestamp_min: args.timestamp_min,
        timestamp_max: args.timestamp_max,
        limit: args.limit,
        flags: if args.reversed { QueryFilterFlags::REVERSED } else { QueryFilterFlags::NONE },
    }
}

/// Reads a batch from a JSON file: a list, or an object with the list under `name`. Each item
/// is checked by the API's own parser, so the errors name the field (`accounts[3].ledger`).
fn read_events<T>(
    path: &Path,
    name: &str,
    item: fn(&Value, &str) -> Result<T, tally_api::ApiError>,
) -> anyhow::Result<Vec<T>> {
    let bytes = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).context("reading standard input")?;
        bytes
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    };
    let value: Value = serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = match &value {
        Value::Array(list) => list,
        Value::Object(object) => match object.get(name) {
            Some(Value::Array(list)) if object.len() == 1 => list,
            _ => bail!("{}: expected a list, or an object with only a list \"{name}\"", path.display()),
        },
        _ => bail!("{}: expected a list of {name}", path.display()),
    };
    if list.is_empty() {
        bail!("{}: the list of {name} is empty", path.display());
    }
    list.iter()
        .enumerate()
        .map(|(index, value)| item(value, &format!("{name}[{index}]")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| anyhow!("{}: {error}", path.display()))
}

/// One result of a batch, whichever kind.
trait EventResult {
    fn status_name(&self) -> &'static str;
    fn succeeded(&self) -> bool;
    fn timestamp(&self) -> u64;
}

impl EventResult for CreateAccountResult {
    fn status_name(&self) -> &'static str {
        self.status.name()
    }
    fn succeeded(&self) -> bool {
        self.status.is_success()
    }
    fn timestamp(&self) -> u64 {
        self.timestamp
    }
}

impl EventResult for CreateTransferResult {
    fn status_name(&self) -> &'static str {
        self.status.name()
    }
    fn succeeded(&self) -> bool {
        self.status.is_success()
    }
    fn timestamp(&self) -> u64 {
        self.timestamp
    }
}

fn receipt_json(receipt: &RequestReceipt) -> Value {
    let mut value = json!({
        "request_id": receipt.request_id.to_string(),
        "height": receipt.height.to_string(),
        "timestamp": receipt.timestamp.to_string(),
        "first_event": receipt.events.start,
        "events": receipt.events.len(),
    });
    if let Some(proven) = &receipt.proven {
        value["verified"] = json!({
            "height": proven.height.to_string(),
            "signers": proven.signers,
            "validators": proven.validators,
            "receipt": tally_client::wire::hex(&proven.receipt),
        });
    }
    value
}

/// `verified at height H by N of M validators`.
fn verified_line(proven: &Proven) -> String {
    verified_text(proven.height, proven.signers, proven.validators)
}

/// `verified at height H by N of M validators`.
fn verified_text(height: u64, signers: usize, validators: usize) -> String {
    format!("verified at height {height} by {signers} of {validators} validators")
}

fn created_output<R: EventResult>(outcome: &BatchOutcome<R>, ids: &[u128], json: bool) -> Output {
    assert_eq!(outcome.results.len(), ids.len());
    let failed = outcome.results.iter().filter(|result| !result.succeeded()).count();
    let text = if json {
        json_line(&json!({
            "requests": outcome.requests.iter().map(receipt_json).collect::<Vec<_>>(),
            "results": outcome.results.iter().zip(ids).enumerate().map(|(index, (result, id))| json!({
                "index": index,
                "id": id.to_string(),
                "status": result.status_name(),
                "timestamp": result.timestamp().to_string(),
            })).collect::<Vec<_>>(),
        }))
    } else {
        let mut text = String::new();
        for receipt in &outcome.requests {
            let events = receipt.events.len();
            let noun = if events == 1 { "event" } else { "events" };
            writeln!(text, "request {} final at height {} ({events} {noun})", receipt.request_id, receipt.height)
                .expect("writing to a String");
            if let Some(proven) = &receipt.proven {
                writeln!(text, "{}", verified_line(proven)).expect("writing to a String");
            }
        }
        let rows = outcome.results.iter().zip(ids).enumerate().map(|(index, (result, id))| {
            vec![index.to_string(), id.to_string(), result.status_name().to_string(), result.timestamp().to_string()]
        });
        text.push_str(&table(&["index", "id", "status", "timestamp"], rows));
        text
    };
    let problem =
        (failed > 0).then(|| format!("{failed} of {} events were not created (see their statuses)", ids.len()));
    Output { text, problem }
}

fn json_line(value: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(value).expect("JSON values serialize"))
}

fn flag_names(names: impl Iterator<Item = &'static str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() { String::from("-") } else { names.join(",") }
}

/// Left-aligned columns separated by two spaces.
fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in &rows {
        assert_eq!(row.len(), headers.len());
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (index, cell) in cells.enumerate() {
            if index > 0 {
                out.push_str("  ");
            }
            write!(out, "{cell:<width$}", width = widths[index]).expect("writing to a String");
        }
        text.push_str(out.trim_end());
        text.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    if rows.is_empty() {
        text.push_str("(none)\n");
    }
    text
}

/// Field and value per line.
fn card(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    fields.iter().map(|(name, value)| format!("{name:<width$}  {value}\n")).collect()
}

fn account_card(account: &Account) -> String {
    card(&[
        ("id", account.id.to_string()),
        ("ledger", account.ledger.to_string()),
        ("code", account.code.to_string()),
        ("flags", flag_names(account.flags.names())),
        ("debits_pending", account.debits_pending.to_string()),
        ("debits_posted", account.debits_posted.to_string()),
        ("credits_pending", account.credits_pending.to_string()),
        ("credits_posted", account.credits_posted.to_string()),
        ("user_data_128", account.user_data_128.to_string()),
        ("user_data_64", account.user_data_64.to_string()),
        ("user_data_32", account.user_data_32.to_string()),
        ("timestamp", account.timestamp.to_string()),
    ])
}

fn transfer_card(transfer: &Transfer) -> String {
    card(&[
        ("id", transfer.id.to_string()),
        ("debit_account_id", transfer.debit_account_id.to_string()),
        ("credit_account_id", transfer.credit_account_id.to_string()),
        ("amount", transfer.amount.to_string()),
        ("pending_id", transfer.pending_id.to_string()),
        ("ledger", transfer.ledger.to_string()),
        ("code", transfer.code.to_string()),
        ("flags", flag_names(transfer.flags.names())),
        ("timeout", transfer.timeout.to_string()),
        ("user_data_128", transfer.user_data_128.to_string()),
        ("user_data_64", transfer.user_data_64.to_string()),
        ("user_data_32", transfer.user_data_32.to_string()),
        ("timestamp", transfer.timestamp.to_string()),
    ])
}

/// What proved a read, as JSON: the height, the signers and the receipt.
fn proven_json(proven: &Proven) -> Value {
    json!({
        "height": proven.height.to_string(),
        "signers": proven.signers,
        "validators": proven.validators,
        "receipt": tally_client::wire::hex(&proven.receipt),
    })
}

/// A read's output: its JSON with `"verified"` added, or its text followed by the verified line.
fn proven_output(mut value: Value, text: String, proven: Option<&Proven>, json: bool) -> String {
    if json {
        if let (Some(proven), Some(fields)) = (proven, value.as_object_mut()) {
            fields.insert("verified".into(), proven_json(proven));
        }
        return json_line(&value);
    }
    match proven {
        Some(proven) => format!("{text}{}\n", verified_line(proven)),
        None => text,
    }
}

fn accounts_output(accounts: &[Account], proven: Option<&Proven>, json: bool) -> String {
    let value = json!({ "accounts": accounts.iter().map(tally_api::account_to_json).collect::<Vec<_>>() });
    let text = if json { String::new() } else { accounts_table(accounts) };
    proven_output(value, text, proven, json)
}

fn accounts_table(accounts: &[Account]) -> String {
    table(
        &["id", "ledger", "code", "debits_pending", "debits_posted", "credits_pending", "credits_posted", "flags"],
        accounts.iter().map(|account| {
            vec![
                account.id.to_string(),
                account.ledger.to_string(),
                account.code.to_string(),
                account.debits_pending.to_string(),
                account.debits_posted.to_string(),
                account.credits_pending.to_string(),
                account.credits_posted.to_string(),
                flag_names(account.flags.names()),
            ]
        }),
    )
}

fn transfers_output(transfers: &[Transfer], proven: Option<&Proven>, json: bool) -> String {
    let value = json!({ "transfers": transfers.iter().map(tally_api::transfer_to_json).collect::<Vec<_>>() });
    let text = if json { String::new() } else { transfers_table(transfers) };
    proven_output(value, text, proven, json)
}

fn transfers_table(transfers: &[Transfer]) -> String {
    table(
        &["id", "debit", "credit", "amount", "pending_id", "ledger", "code", "flags", "timestamp"],
        transfers.iter().map(|transfer| {
            vec![
                transfer.id.to_string(),
                transfer.debit_account_id.to_string(),
                transfer.credit_account_id.to_string(),
                transfer.amount.to_string(),
                transfer.pending_id.to_string(),
                transfer.ledger.to_string(),
                transfer.code.to_string(),
                flag_names(transfer.flags.names()),
                transfer.timestamp.to_string(),
            ]
        }),
    )
}

fn balances_output(balances: &[AccountBalance], proven: Option<&Proven>, json: bool) -> String {
    let value = json!({ "balances": balances.iter().map(tally_api::account_balance_to_json).collect::<Vec<_>>() });
    let text = if json { String::new() } else { balances_table(balances) };
    proven_output(value, text, proven, json)
}

fn balances_table(balances: &[AccountBalance]) -> String {
    table(
        &["timestamp", "debits_pending", "debits_posted", "credits_pending", "credits_posted"],
        balances.iter().map(|balance| {
            vec![
                balance.timestamp.to_string(),
                balance.debits_pending.to_string(),
                balance.debits_posted.to_string(),
                balance.credits_pending.to_string(),
                balance.credits_posted.to_string(),
            ]
        }),
    )
}

fn status_output(status: &ClusterStatus, json: bool) -> String {
    if json {
        return json_line(&status.json);
    }
    let mut text = card(&[
        ("chain_id", status.chain_id.to_string()),
        ("validator", status.validator.clone()),
        ("height", status.height.to_string()),
        ("finalized_block", status.finalized_block.clone()),
        ("state_digest", status.state_digest.clone()),
        ("view", status.view.to_string()),
        ("leader", status.leader.clone()),
        ("mempool_requests", status.mempool_requests.to_string()),
        ("requests_finalized", status.requests_finalized.to_string()),
        ("blocks_refused", status.blocks_refused.to_string()),
        ("evidence", status.evidence.to_string()),
        (
            "faults_tolerated",
            format!("{} of {} validators (quorum {})", status.faults_tolerated, status.validators.len(), status.quorum),
        ),
    ]);
    if status.faults_tolerated == 0 {
        text.push_str(
            "warning: this cluster tolerates no faulty validator: if one stops, the chain stops (4 validators are the \
             fewest that tolerate one)\n",
        );
    }
    text.push('\n');
    text.push_str(&table(
        &["validator", "api", "p2p", "last_vote_view", "last_seen_ms", "missed", "faults"],
        status.validators.iter().map(|validator| {
            let key =
                if validator.is_self { format!("{} (self)", short(&validator.key)) } else { short(&validator.key) };
            vec![
                key,
                validator.api.clone(),
                validator.p2p.clone(),
                validator.last_vote_view.to_string(),
                validator.last_seen_ms.map_or_else(|| String::from("-"), |ms| ms.to_string()),
                validator.missed_finalizations.to_string(),
                validator.faults.to_string(),
            ]
        }),
    ));
    text
}

fn statuses_output(statuses: &[(String, Result<ClusterStatus, ClientError>)], json: bool) -> String {
    if json {
        let entries: Vec<Value> = statuses
            .iter()
            .map(|(url, status)| match status {
                Ok(status) => json!({ "url": url, "status": status.json }),
                Err(error) => json!({ "url": url, "error": { "code": error.code(), "message": error.to_string() } }),
            })
            .collect();
        return json_line(&Value::Array(entries));
    }
    table(
        &["url", "validator", "height", "view", "state_digest", "mempool", "error"],
        statuses.iter().map(|(url, status)| match status {
            Ok(status) => vec![
                url.clone(),
                short(&status.validator),
                status.height.to_string(),
                status.view.to_string(),
                short(&status.state_digest),
                status.mempool_requests.to_string(),
                String::from("-"),
            ],
            Err(error) => {
                let dash = || String::from("-");
                vec![url.clone(), dash(), dash(), dash(), dash(), dash(), error.to_string()]
            }
        }),
    )
}

/// The first 12 hex digits of a key or digest, enough to tell them apart in a table.
fn short(hex: &str) -> String {
    hex.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed client command line.
    #[derive(Debug)]
    struct Cli {
        args: ClientArgs,
        command: ClientCommand,
    }

    /// Parses a client command line as `tally` does.
    fn parse(line: &str) -> Result<Cli, clap::Error> {
        use clap::{FromArgMatches as _, Subcommand as _};
        let command = ClientCommand::augment_subcommands(clap::Command::new("tally").subcommand_required(true));
        let matches = add_cluster_options(command)
            .try_get_matches_from(std::iter::once("tally").chain(line.split_whitespace()))?;
        Ok(Cli { args: cluster_args(&matches)?, command: ClientCommand::from_arg_matches(&matches)? })
    }

    #[test]
    fn the_status_says_how_many_faults_the_cluster_tolerates_and_warns_at_none() {
        let validator = |key: &str| tally_client::ValidatorActivity {
            key: key.repeat(32),
            p2p: "127.0.0.1:1".into(),
            api: "http://127.0.0.1:2".into(),
            last_vote_view: 3,
            last_seen_ms: Some(10),
            missed_finalizations: 0,
            faults: 0,
            is_self: key == "aa",
        };
        let mut status = ClusterStatus {
            chain_id: 1,
            validator: "aa".repeat(32),
            height: 2,
            finalized_block: "bb".repeat(32),
            state_digest: "cc".repeat(32),
            view: 3,
            leader: "aa".repeat(32),
            mempool_requests: 0,
            requests_finalized: 1,
            blocks_refused: 0,
            evidence: 0,
            faults_tolerated: 0,
            quorum: 3,
            validators: vec![validator("aa"), validator("dd"), validator("ee")],
            json: serde_json::Value::Null,
        };
        let text = status_output(&status, false);
        assert!(text.contains("faults_tolerated    0 of 3 validators (quorum 3)"), "{text}");
        assert!(text.contains("warning: this cluster tolerates no faulty validator"), "{text}");
        status.faults_tolerated = 1;
        status.validators.push(validator("ff"));
        let text = status_output(&status, false);
        assert!(
            text.contains("faults_tolerated    1 of 4 validators (quorum 3)") && !text.contains("warning"),
            "{text}"
        );
    }

    #[test]
    fn each_client_command_keeps_its_own_description() {
        use clap::Subcommand as _;
        let command = add_cluster_options(ClientCommand::augment_subcommands(clap::Command::new("tally")));
        let about = |name: &str| {
            command
                .find_subcommand(name)
                .and_then(clap::Command::get_about)
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        assert_eq!(about("create-account"), "Create one account");
        assert!(about("status").starts_with("Show the cluster's status"), "{}", about("status"));
        let abouts: Vec<String> = command.get_subcommands().map(|sub| about(sub.get_name())).collect();
        let distinct: std::collections::BTreeSet<&String> = abouts.iter().collect();
        assert_eq!(distinct.len(), abouts.len(), "{abouts:#?}");
    }

    #[test]
    fn commands_parse_with_arguments_anywhere() {
        let cli = parse(
            "transfer --id 5 --debit 1 --credit 2 --amount 340282366920938463463374607431768211455 --ledger 1 \
             --code 3 --flags pending,linked --timeout 9 --validator http://a:1 --validator http://b:2 --chain-id 4",
        )
        .unwrap();
        assert_eq!(cli.args.validators, ["http://a:1", "http://b:2"]);
        assert_eq!(cli.args.chain_id, Some(4));
        let ClientCommand::Transfer { transfer, request_id: None } = cli.command else { panic!("a transfer") };
        let transfer = transfer_from_fields(&transfer).unwrap();
        assert_eq!(transfer.amount, u128::MAX);
        assert_eq!(transfer.flags, TransferFlags::PENDING | TransferFlags::LINKED);
        assert_eq!((transfer.timeout, transfer.code, transfer.ledger), (9, 3, 1));

        let cli = parse("create-account --json --id 7 --ledger 1 --code 2 --flags history --request-id 99").unwrap();
        assert!(cli.args.json);
        let ClientCommand::CreateAccount { account, request_id: Some(99) } = cli.command else { panic!() };
        assert_eq!(account_from_fields(&account).unwrap().flags, AccountFlags::HISTORY);

        let cli = parse("account-transfers 9 --debits --reversed --limit 5").unwrap();
        let ClientCommand::AccountTransfers { filter } = cli.command else { panic!() };
        let filter = account_filter(&filter);
        assert_eq!(filter.flags, AccountFilterFlags::DEBITS | AccountFilterFlags::REVERSED);
        assert_eq!((filter.account_id, filter.limit), (9, 5));
        let ClientCommand::Balances { filter } = parse("balances 9").unwrap().command else { panic!() };
        assert_eq!(account_filter(&filter).flags, AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS);

        assert!(parse("lookup-accounts").is_err(), "ids are required");
        assert!(parse("account -1").is_err(), "ids are unsigned");
        assert!(parse("transfer --id 1").is_err(), "the transfer's fields are required");
        assert!(parse("--validator http://a:1 account 1").is_err(), "cluster options follow the command");
    }

    #[test]
    fn unknown_flags_are_refused_with_the_known_names() {
        let cli = parse("create-account --id 7 --ledger 1 --code 2 --flags histroy").unwrap();
        let ClientCommand::CreateAccount { account, .. } = cli.command else { panic!() };
        let error = account_from_fields(&account).unwrap_err().to_string();
        assert!(error.contains("histroy") && error.contains("history"), "{error}");
    }

    #[test]
    fn batches_read_from_files_with_field_paths_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        std::fs::write(&path, r#"[{"id": "1", "ledger": 1, "code": 2}, {"id": "2", "ledger": 1, "code": 2}]"#).unwrap();
        let accounts = read_events(&path, "accounts", tally_api::account_from_json).unwrap();
        assert_eq!(accounts.iter().map(|account| account.id).collect::<Vec<_>>(), [1, 2]);
        std::fs::write(&path, r#"{"accounts": [{"id": "3", "ledger": 1, "code": 2}]}"#).unwrap();
        assert_eq!(read_events(&path, "accounts", tally_api::account_from_json).unwrap()[0].id, 3);

        std::fs::write(&path, r#"[{"id": "1", "ledger": "x"}]"#).unwrap();
        let error = read_events(&path, "accounts", tally_api::account_from_json).unwrap_err().to_string();
        assert!(error.contains("accounts[0].ledger"), "{error}");
        std::fs::write(&path, "[]").unwrap();
        assert!(read_events(&path, "accounts", tally_api::account_from_json).is_err());
        std::fs::write(&path, r#"{"transfers": []}"#).unwrap();
        assert!(read_events(&path, "accounts", tally_api::account_from_json).is_err());
        // Longer than one request: split by the client, not refused here.
        let long: Vec<Value> = (1..=8_191).map(|id| json!({"id": id.to_string(), "ledger": 1, "code": 1})).collect();
        std::fs::write(&path, Value::Array(long).to_string()).unwrap();
        assert_eq!(read_events(&path, "accounts", tally_api::account_from_json).unwrap().len(), 8_191);
    }

    #[test]
    fn tables_align_and_say_when_empty() {
        let text = table(
            &["id", "status"],
            vec![vec!["1".into(), "created".into()], vec!["100".into(), "exists".into()]].into_iter(),
        );
        assert_eq!(text, "id   status\n1    created\n100  exists\n");
        assert_eq!(table(&["id"], std::iter::empty()), "id\n(none)\n");
    }

    #[tokio::test]
    async fn commands_that_write_need_a_key_and_every_command_a_validator() {
        let args = ClientArgs {
            validators: vec![],
            key: None,
            chain_id: Some(1),
            json: false,
            genesis: None,
            no_verify: false,
        };
        let error = execute(&args, ClientCommand::Account { id: 1 }).await.unwrap_err().to_string();
        assert!(error.contains("TALLY_VALIDATORS"), "{error}");
        let args = ClientArgs { validators: vec!["http://127.0.0.1:9".into()], ..args };
        let cli = parse("create-account --id 7 --ledger 1 --code 2").unwrap();
        let error = execute(&args, cli.command).await.unwrap_err().to_string();
        assert!(error.contains("TALLY_CLIENT_KEY"), "{error}");
    }

    #[test]
    fn answers_verify_against_the_genesis_given_or_beside_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("client-0.key");
        let args =
            ClientArgs { validators: vec![], key: None, chain_id: None, json: false, genesis: None, no_verify: false };
        let error = genesis_path(&args, Some(&key)).unwrap_err().to_string();
        assert!(error.contains("--genesis") && error.contains("--no-verify"), "{error}");
        std::fs::write(dir.path().join("genesis.json"), "{}").unwrap();
        assert_eq!(genesis_path(&args, Some(&key)).unwrap(), Some(dir.path().join("genesis.json")));
        // A read without a key file has only --genesis to go by.
        assert!(genesis_path(&args, None).is_err());
        let given = ClientArgs { genesis: Some(PathBuf::from("elsewhere.json")), ..args.clone() };
        assert_eq!(genesis_path(&given, Some(&key)).unwrap(), Some(PathBuf::from("elsewhere.json")));
        assert_eq!(genesis_path(&given, None).unwrap(), Some(PathBuf::from("elsewhere.json")));
        let skipped = ClientArgs { no_verify: true, ..given };
        assert_eq!(genesis_path(&skipped, Some(&key)).unwrap(), None);
    }
}
