//! Re-founding a cluster from a backup (disaster recovery): a real cluster of four validators
//! is backed up and then lost whole; `tally init --found-from` makes a new genesis (a chain id
//! of its own, the old clients, the backup's state), each new validator is seeded with `tally
//! restore` from the same backup, and the new cluster starts from exactly the old ledger: the
//! same ledger digest and balances, old request ids still refused as repeats, and new writes
//! final. A new validator not seeded refuses to start and says what to do.

mod client_support;

use client_support::{Cluster, tally, test_options, text};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tally_chain::ChainState;
use tally_chain::backup::BackupHeader;
use tally_client::Client;
use tally_ledger::{Account, Transfer};
use tally_node::NodeConfig;
use tally_node::cluster::Layout;
use tally_node::genesis_file::GenesisFile;

/// Snapshots every 4 finalized heights, so a short run writes several.
const SNAPSHOT_INTERVAL: u64 = 4;

fn transfer(id: u128, amount: u128) -> Transfer {
    Transfer { id, debit_account_id: 1, credit_account_id: 2, amount, ledger: 1, code: 1, ..Transfer::default() }
}

async fn status(http: &reqwest::Client, url: &str) -> Value {
    http.get(format!("{url}/v1/status")).send().await.unwrap().json().await.unwrap()
}

/// The state a backup file holds, read as `tally restore` reads it.
fn backup_state(path: &std::path::Path) -> ChainState {
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let header = BackupHeader::read(&mut reader).unwrap();
    ChainState::restore(&header.read_snapshot(&mut reader).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_cluster_is_refounded_from_a_backup() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let source = Cluster::start(4, |_, config| config.snapshot_interval = SNAPSHOT_INTERVAL);
    let client = source.client(&source.urls);
    let account = |id| Account { id, ledger: 1, code: 1, ..Account::default() };
    client.create_accounts(&[account(1), account(2)]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tally.backup");
    let file_arg = file.to_str().unwrap();
    // Kept apart from the cluster's own directory, which goes with it.
    let source_genesis = dir.path().join("old-genesis.json");
    std::fs::copy(&source.files.genesis, &source_genesis).unwrap();
    let source_genesis = source_genesis.to_str().unwrap().to_string();
    let kept = dir.path().join("source");
    std::fs::create_dir(&kept).unwrap();
    for file in ["genesis.json", "validator-0.toml", "validator-0.key", "gateway.key"] {
        std::fs::copy(source.dir().join(file), kept.join(file)).unwrap();
    }

    // Transfers, each its own request with a known id, until validator 0 holds a proven snapshot.
    let mut request_id = 1_000u128;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        client.create_transfers_with_id(request_id, &[transfer(request_id, 1)]).await.unwrap();
        request_id += 1;
        let output = tally(&["backup", "--validator", &source.urls[0], "--out", file_arg]);
        if output.status.success() {
            break;
        }
        let error = text(&output.stderr);
        assert!(
            error.contains("no snapshot that a certified header proves yet") || error.contains("queue is full"),
            "{error}"
        );
        assert!(Instant::now() < deadline, "no backup within 120 s: {error}");
    }
    let backed_up = backup_state(&file);
    let expected = backed_up.ledger().lookup_accounts(&[1, 2]);
    assert!(expected[0].debits_posted > 0, "the backup holds transfers");
    // A request the backup holds (its first transfer's).
    let old_request = 1_000u128;
    assert_eq!(backed_up.ledger().lookup_transfers(&[old_request]).len(), 1);

    // The whole cluster is lost (the client keeps its key).
    let signer = source.signer();
    let api_port: u16 = source.urls[0].rsplit(':').next().unwrap().parse().unwrap();
    let base_port = api_port - Layout::loopback(4, 0).ports(0).1;
    drop(client);
    drop(source);

    // A new genesis from the backup: the old chain's id is refused, then chain 2.
    let out = dir.path().join("refounded");
    let out_arg = out.to_str().unwrap();
    let base_arg = base_port.to_string();
    let init = |chain: &str| {
        tally(&[
            "init",
            "--found-from",
            file_arg,
            "--source-genesis",
            &source_genesis,
            "--chain-id",
            chain,
            "--base-port",
            &base_arg,
            "--out",
            out_arg,
        ])
    };
    let refused = init("1");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    assert!(text(&refused.stderr).contains("needs an id of its own"), "{}", text(&refused.stderr));
    assert!(!out.join("genesis.json").exists(), "a refused init writes no genesis");
    let output = init("2");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = text(&output.stdout);
    assert!(
        printed.contains("starts from chain 1's state at height") && printed.contains("tally restore"),
        "{printed}"
    );
    let genesis = GenesisFile::load(&out.join("genesis.json")).unwrap();
    let founding = genesis.genesis().founding().expect("a founding").clone();
    let genesis_text = std::fs::read_to_string(out.join("genesis.json")).unwrap();
    assert_eq!((founding.chain_id, founding.height), (1, backed_up.height()));
    assert!(genesis.clients().contains(&tally_chain::keys::public_key(&signer)), "the old client is kept");

    // A validator of the new chain that was not seeded stops at once, and says what to do.
    let configs: Vec<_> = (0..4).map(|index| out.join(format!("validator-{index}.toml"))).collect();
    let mut unseeded = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["start", "--config", configs[0].to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while unseeded.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            unseeded.kill().unwrap();
            panic!("an unseeded validator of a re-founded chain kept running");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut error = String::new();
    std::io::Read::read_to_string(&mut unseeded.stderr.take().unwrap(), &mut error).unwrap();
    assert!(!unseeded.wait().unwrap().success());
    assert!(error.contains("re-founded from a backup of chain 1") && error.contains("tally restore"), "{error}");

    // Bad input to restore: exit 3, `unverified:`, nothing written. A flipped byte in the
    // backup's state; a genesis founded on another height, or on another state digest.
    let fails = |args: &[&str], why: &str| {
        let output = tally(args);
        let error = text(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {error}");
        assert!(error.starts_with("unverified:") && error.contains(why), "{args:?}: {error}");
    };
    let config_1 = configs[1].to_str().unwrap();
    let mut flipped = std::fs::read(&file).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let flipped_file = dir.path().join("flipped.backup");
    std::fs::write(&flipped_file, &flipped).unwrap();
    fails(
        &["restore", flipped_file.to_str().unwrap(), "--config", config_1, "--first-start"],
        "does not match its hash",
    );
    for (name, from, to, why) in [
        (
            "height",
            format!("\"height\": {}", founding.height),
            format!("\"height\": {}", founding.height + 1),
            "at height",
        ),
        ("digest", hex(&founding.state_digest), hex(&[0x42; 32]), "not the one the genesis was founded on"),
    ] {
        let other = dir.path().join(format!("other-{name}"));
        std::fs::create_dir(&other).unwrap();
        assert!(genesis_text.contains(&from), "{from} in {genesis_text}");
        std::fs::write(other.join("genesis.json"), genesis_text.replace(&from, &to)).unwrap();
        for file in ["validator-1.toml", "validator-1.key"] {
            std::fs::copy(out.join(file), other.join(file)).unwrap();
        }
        let config = other.join("validator-1.toml");
        fails(&["restore", file_arg, "--config", config.to_str().unwrap(), "--first-start"], why);
        assert!(!other.join("data").exists(), "a refused restore writes nothing");
    }
    // --first-start is only for the founding backup of a re-founded chain.
    let output = tally(&["restore", file_arg, "--config", &source_config_text_path(&dir), "--first-start"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("--first-start is for the founders"), "{}", text(&output.stderr));

    // The refused start left a data directory: restore refuses it, and takes it once it holds
    // only a vote record (`*-votes`).
    let data_dir_0 = NodeConfig::load(&configs[0]).unwrap().data_dir;
    let output = tally(&["restore", file_arg, "--config", configs[0].to_str().unwrap(), "--first-start"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("is not empty"), "{}", text(&output.stderr));
    for entry in std::fs::read_dir(&data_dir_0).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_str().unwrap().ends_with("-votes") {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(entry.path()).unwrap();
        } else {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    // The validator stopped before it opened a vote record; an operator would copy the old one in.
    std::fs::create_dir_all(data_dir_0.join("validator-votes")).unwrap();

    // Each founder seeded from the same backup, then started.
    let mut nodes = Vec::new();
    for path in &configs {
        let config_arg = path.to_str().unwrap();
        let output = tally(&["restore", file_arg, "--config", config_arg, "--first-start"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(text(&output.stdout).contains("holds the founding state of chain 2"), "{}", text(&output.stdout));
        let mut config = NodeConfig::load(path).unwrap();
        config.snapshot_interval = SNAPSHOT_INTERVAL;
        nodes.push(tally_node::run(config).expect("a seeded validator starts"));
    }
    let urls: Vec<String> =
        (0..4).map(|index| format!("http://127.0.0.1:{}", Layout::loopback(4, base_port).ports(index).1)).collect();

    // It starts from exactly the old ledger.
    let http = reqwest::Client::new();
    for url in &urls {
        let status = status(&http, url).await;
        assert_eq!(status["chain_id"], "2");
        assert_eq!(status["ledger_digest"], hex(&backed_up.ledger_digest()), "{url}: {status}");
    }
    // The old client writes on with its old key, signing for the new chain, and verifies every
    // answer against the new genesis alone.
    let client = Client::with_options(&urls, 2, signer, test_options()).unwrap().verifying(genesis.genesis().clone());
    assert_eq!(client.lookup_accounts(&[1, 2]).await.unwrap(), expected);
    // A request the old chain included is still a repeat: it is not applied again.
    let again = client.create_transfers_with_id(old_request, &[transfer(old_request, 1)]).await.unwrap_err();
    assert_eq!(again.code(), "outcome_not_held", "{again}");
    assert_eq!(client.lookup_accounts(&[1, 2]).await.unwrap(), expected);
    // New writes are final, with receipts that verify against the new genesis.
    let outcome = client.create_transfers(&[transfer(1 << 40, 7)]).await.unwrap();
    assert!(outcome.height() > 0);
    assert!(outcome.requests[0].proven.is_some(), "its receipt verified against the new genesis");
    let after = client.lookup_accounts(&[1, 2]).await.unwrap();
    assert_eq!(after[0].debits_posted, expected[0].debits_posted + 7);
    assert_eq!(after[1].credits_posted, expected[1].credits_posted + 7);
    drop(http);
    for node in nodes {
        node.stop().unwrap();
    }
}

/// A config of the old chain (not re-founded), written beside the test's files: the source
/// cluster's own went with it.
fn source_config_text_path(dir: &tempfile::TempDir) -> String {
    dir.path().join("source").join("validator-0.toml").to_str().unwrap().to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
