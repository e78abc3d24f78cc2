//! Damaged data on real validator processes (`tally init`, four `tally start`): bytes flipped in
//! the middle of a stopped validator's finalized log.
//!
//! - In an old section, the validator starts, finds the damage, repairs it from its peers, and
//!   answers every old outcome as validator 0 does (or 503 `outcome_repairing` meanwhile).
//! - In the current section, it stops at once: it exits non-zero, never prints that it is
//!   serving, and says which files are damaged and what to do.
//!
//! Never a healthy validator with wrong or missing answers.

use serde_json::Value;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tally_client::{Client, ClientOptions};
use tally_ledger::{Account, Transfer};
use tally_node::cluster::Layout;
use tally_node::genesis_file::GenesisFile;

const TALLY: &str = env!("CARGO_BIN_EXE_tally");
const VALIDATORS: usize = 4;
/// Records per section of the finalized log: the journal checks its last two sections when it
/// opens, so damage in an older one is found by the validator's scrub.
const BLOCKS_PER_SECTION: u64 = 1_024;

/// A base port with `count` free ports after it, below the ephemeral range.
fn free_base_port(count: u16) -> u16 {
    for attempt in 0..200u32 {
        let seed = std::process::id().wrapping_mul(7_919).wrapping_add(attempt.wrapping_mul(104_729));
        let base = 20_000 + (seed % 12_000) as u16;
        let free = (0..count).all(|offset| TcpListener::bind((Ipv4Addr::LOCALHOST, base + offset)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free range of {count} ports");
}

/// One `tally start` process, its output in files.
struct Validator {
    dir: PathBuf,
    index: usize,
    run: usize,
    child: Option<Child>,
}

impl Validator {
    fn start(dir: &Path, index: usize, run: usize) -> Self {
        let output = |stream: &str| File::create(dir.join(format!("validator-{index}.run-{run}.{stream}"))).unwrap();
        let config = dir.join(format!("validator-{index}.toml"));
        let child = Command::new(TALLY)
            .args(["start", "--config", config.to_str().unwrap()])
            .stdout(Stdio::from(output("out")))
            .stderr(Stdio::from(output("err")))
            .spawn()
            .expect("the tally binary runs");
        Self { dir: dir.to_path_buf(), index, run, child: Some(child) }
    }

    /// What this run printed, standard output then standard error.
    fn printed(&self) -> (String, String) {
        let read = |stream: &str| {
            std::fs::read_to_string(self.dir.join(format!("validator-{}.run-{}.{stream}", self.index, self.run)))
        };
        (read("out").unwrap_or_default(), read("err").unwrap_or_default())
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().unwrap().try_wait().unwrap()
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "validator {} exited {status:?} on SIGTERM", self.index);
                return;
            }
            assert!(Instant::now() < deadline, "validator {} did not stop", self.index);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn get(http: &reqwest::Client, url: &str) -> Option<(reqwest::StatusCode, Value)> {
    let response = http.get(url).send().await.ok()?;
    let status = response.status();
    Some((status, response.json().await.unwrap_or_default()))
}

async fn wait_healthy(http: &reqwest::Client, url: &str, validator: &mut Validator) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((status, _)) = get(http, &format!("{url}/healthz")).await
            && status.is_success()
        {
            return;
        }
        if let Some(status) = validator.exited() {
            panic!("validator {} exited {status:?}: {:?}", validator.index, validator.printed());
        }
        assert!(Instant::now() < deadline, "{url} is not healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn finalized_height(http: &reqwest::Client, url: &str) -> u64 {
    let Some((_, status)) = get(http, &format!("{url}/v1/status")).await else {
        return 0;
    };
    status["height"].as_str().and_then(|height| height.parse().ok()).unwrap_or(0)
}

/// The log's section files, oldest first.
fn sections(dir: &Path) -> Vec<PathBuf> {
    let log = dir.join("data/validator-3/validator-finalized_data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&log).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

/// Flips one bit at a quarter, half and three quarters of `file`.
fn flip(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let length = bytes.len();
    for at in [length / 4, length / 2, 3 * length / 4] {
        bytes[at] ^= 0x08;
    }
    std::fs::write(file, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_finalized_data_is_repaired_from_peers_or_stops_the_validator_with_a_clear_message() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("cluster");
    let base = free_base_port(2 * VALIDATORS as u16);
    let init = Command::new(TALLY)
        .args(["init", "--validators", "4", "--base-port", &base.to_string(), "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let urls: Vec<String> = (0..VALIDATORS)
        .map(|index| format!("http://127.0.0.1:{}", Layout::loopback(VALIDATORS, base).ports(index).1))
        .collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut validators: Vec<Validator> = (0..VALIDATORS).map(|index| Validator::start(&dir, index, 0)).collect();
    for (url, validator) in urls.iter().zip(&mut validators) {
        wait_healthy(&http, url, validator).await;
    }

    // Requests from several clients at once until validator 3's log holds three sections.
    let chain_id = GenesisFile::load(&dir.join("genesis.json")).unwrap().chain_id();
    let signer = tally_client::load_signer(&dir.join("client-0.key")).unwrap();
    let options = ClientOptions { submit_wait: Duration::from_secs(60), ..ClientOptions::default() };
    let client = Arc::new(Client::with_options(&urls[..3], chain_id, signer, options).unwrap());
    let accounts: Vec<Account> = (1..=4).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
    client.create_accounts_with_id(1, &accounts).await.unwrap();
    let (next_id, stop) = (Arc::new(AtomicU64::new(2)), Arc::new(AtomicBool::new(false)));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (client, next_id, stop) = (client.clone(), next_id.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let id = u128::from(next_id.fetch_add(1, Ordering::Relaxed));
                let transfer = Transfer {
                    id,
                    debit_account_id: 1 + id % 4,
                    credit_account_id: 1 + (id + 1) % 4,
                    amount: id,
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                };
                client.create_transfers_with_id(id, &[transfer]).await.unwrap();
                sent.push(id);
            }
            sent
        }));
    }
    let started = Instant::now();
    let three_sections = 2 * BLOCKS_PER_SECTION + 20;
    while finalized_height(&http, &urls[3]).await < three_sections {
        assert!(started.elapsed() < Duration::from_secs(900), "the cluster did not reach height {three_sections}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut ids = vec![1u128];
    for task in load {
        ids.extend(task.await.unwrap());
    }
    println!("{} requests, height {three_sections} in {:?}", ids.len(), started.elapsed());
    let client_key = client.client_key_hex().to_string();

    // An old section damaged: validator 3 repairs it and answers as validator 0.
    validators[3].stop();
    let files = sections(&dir);
    assert!(files.len() >= 3, "{files:?}");
    flip(&files[0]);
    validators[3] = Validator::start(&dir, 3, 1);
    wait_healthy(&http, &urls[3], &mut validators[3]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut repairing = 0;
    for id in &ids {
        let path = format!("/v1/requests/{client_key}/{id}");
        let (status, expected) = get(&http, &format!("{}{path}", urls[0])).await.unwrap();
        assert!(status.is_success(), "validator 0 on request {id}: {status} {expected}");
        loop {
            let (status, answer) = get(&http, &format!("{}{path}", urls[3])).await.unwrap();
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && answer["error"]["code"] == "outcome_repairing" {
                repairing += 1;
                assert!(Instant::now() < deadline, "request {id} still unrepaired");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            assert!(status.is_success(), "validator 3 on request {id}: {status} {answer}");
            assert_eq!(answer, expected, "validator 3 answers request {id} otherwise than validator 0");
            break;
        }
    }
    let (out, err) = validators[3].printed();
    let printed = format!("{out}{err}");
    assert!(printed.contains("a finalized record is damaged"), "the damage went unnoticed:\n{printed}");
    assert!(printed.contains("repaired a damaged finalized record from a peer"), "{printed}");
    assert!(validators[3].exited().is_none(), "validator 3 stopped:\n{printed}");
    // Its status says so too: nothing left to repair once the scrub has passed the damage.
    loop {
        let (status, body) = get(&http, &format!("{}/v1/status", urls[3])).await.unwrap();
        assert!(status.is_success(), "{status} {body}");
        if body["records_repairing"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "validator 3 still repairing: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("{repairing} answers were outcome_repairing; every outcome then matched validator 0");

    // The current section damaged: validator 3 stops at once and says what to do.
    validators[3].stop();
    flip(sections(&dir).last().unwrap());
    validators[3] = Validator::start(&dir, 3, 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = validators[3].exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "validator 3 runs on a damaged current section: {:?}",
            validators[3].printed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (out, err) = validators[3].printed();
    assert!(!status.success(), "validator 3 exited {status:?} on damaged data");
    assert!(!out.contains("serving"), "validator 3 said it was serving:\n{out}");
    assert!(err.contains("validator-finalized_data"), "the message names the damaged files:\n{err}");
    assert!(err.contains("move the validator's data directory aside"), "the message says what to do:\n{err}");
}
