//! The built `tally` binary: `tally dev` runs a whole cluster, serves the API, stops cleanly on
//! SIGINT, and resumes from its directory; `tally init` writes configs `tally start` runs.

use serde_json::{Value, json};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tally_chain::Request;
use tally_chain::keys::public_key;
use tally_ledger::Account;
use tally_node::api::signed::request_to_json;
use tally_node::{hex, key_file};

const TALLY: &str = env!("CARGO_BIN_EXE_tally");
/// How long a cluster may take to answer on every validator.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A base port with `count` free ports after it (a moment ago). Tests of this binary run at
/// once, so each call starts its search elsewhere.
fn free_base_port(count: u16) -> u16 {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for attempt in 0..200u32 {
        let seed = std::process::id().wrapping_mul(6_151).wrapping_add((call * 200 + attempt).wrapping_mul(99_991));
        // Below the ephemeral range (32768 and up), where outgoing connections take their ports.
        let base = 20_000 + (seed % 12_000) as u16;
        let listeners: Vec<_> =
            (0..count).map_while(|offset| TcpListener::bind((Ipv4Addr::LOCALHOST, base + offset)).ok()).collect();
        if listeners.len() == count as usize {
            return base;
        }
    }
    panic!("no free range of {count} ports");
}

/// A child process killed if the test fails before it exits.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Running {
    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// Sends `signal` (by name, as kill(1) takes it), waits for a clean exit, and returns what
    /// the process printed.
    fn stop_with(self, signal: &str) -> String {
        self.stop_with_output(signal).0
    }

    /// Like `stop_with`, with what the process printed on standard error too (if piped).
    fn stop_with_output(mut self, signal: &str) -> (String, String) {
        let status = Command::new("kill").args([format!("-{signal}"), self.pid().to_string()]).status().unwrap();
        assert!(status.success());
        let mut child = self.0.take().unwrap();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let output = child.wait_with_output().unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                assert!(status.success(), "exit {status:?} after SIG{signal}; stdout:\n{stdout}");
                return (stdout, stderr);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("tally did not stop within {STOP_TIMEOUT:?} of SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn spawn(args: &[&str]) -> Running {
    let child = Command::new(TALLY)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the tally binary runs");
    Running(Some(child))
}

async fn wait_healthy(urls: &[String]) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let deadline = Instant::now() + START_TIMEOUT;
    for url in urls {
        loop {
            if let Ok(response) = http.get(format!("{url}/healthz")).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                break;
            }
            assert!(Instant::now() < deadline, "{url} is not healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn post(url: &str, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let response = http.post(format!("{url}{path}")).json(body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn get(url: &str, path: &str) -> (reqwest::StatusCode, Value) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let response = http.get(format!("{url}{path}")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn tally_dev_serves_stops_on_sigint_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("dev");
    let base = free_base_port(8);
    let urls: Vec<String> = (0..4).map(|index| format!("http://127.0.0.1:{}", base + 2 * index + 1)).collect();
    let args = ["dev", "--dir", cluster_dir.to_str().unwrap(), "--base-port", &base.to_string()];

    let first = spawn(&args);
    wait_healthy(&urls).await;
    let client = key_file::read(&cluster_dir.join("client-0.key")).unwrap();
    let account = Account { id: 77, ledger: 1, code: 10, ..Account::default() };
    let request =
        request_to_json(&Request::create_accounts(1, 1, tally_chain::default_expiry(), &client, &[account]).unwrap());
    let (status, body) = post(&urls[1], "/v1/requests", &request).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "created");
    let printed = first.stop_with("INT");
    assert!(printed.contains("created a cluster of 4 validators"), "{printed}");
    assert!(printed.contains(&urls[0]) && printed.contains("client-0.key"), "{printed}");
    assert!(printed.trim_end().ends_with("stopped"), "{printed}");

    // The same directory: the same cluster, with the account. A validator that had not yet
    // finalized the block when it stopped catches up from the others.
    let second = spawn(&args);
    wait_healthy(&urls).await;
    let deadline = Instant::now() + START_TIMEOUT;
    for url in &urls {
        loop {
            let (status, body) = get(url, "/v1/accounts/77").await;
            if status == reqwest::StatusCode::OK {
                assert_eq!(body["ledger"], 1);
                break;
            }
            assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{url}: {body}");
            assert!(Instant::now() < deadline, "{url} never had account 77");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The outcome of the earlier request is still known, and a retry answers it.
    let client_hex = hex::encode(public_key(&client).as_ref());
    let (status, outcome) = get(&urls[2], &format!("/v1/requests/{client_hex}/1")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{outcome}");
    let (status, retried) = post(&urls[3], "/v1/requests", &request).await;
    assert_eq!((status, &retried), (reqwest::StatusCode::OK, &outcome));
    let (status, body) = post(&urls[0], "/v1/accounts/lookup", &json!({ "ids": ["77"] })).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(body["accounts"].as_array().unwrap().len(), 1);
    let printed = second.stop_with("TERM");
    assert!(printed.contains("resuming"), "{printed}");
    assert!(printed.trim_end().ends_with("stopped"), "{printed}");
}

fn tally(args: &[&str]) -> std::process::Output {
    Command::new(TALLY).args(args).output().expect("the tally binary runs")
}

/// A file's permission bits.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())).permissions().mode() & 0o777
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn start_refuses_secrets_that_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cluster");
    let output = tally(&["init", "--gateway", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The gateway's key has to reach every validator's host, and the message says so.
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("gateway.key"), "{printed}");
    assert_eq!(mode(&out.join("gateway.key")), 0o600);

    // The config holds the gateway token: readable by the group or others, it is refused.
    let config = out.join("validator-0.toml");
    for loose in [0o644, 0o640] {
        set_mode(&config, loose);
        let output = tally(&["start", "--config", config.to_str().unwrap()]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("chmod 600 {}", config.display())), "{stderr}");
        assert!(stderr.contains("gateway token"), "{stderr}");
    }
    set_mode(&config, 0o600);
    // So is a key file.
    let key = out.join("validator-0.key");
    set_mode(&key, 0o644);
    let output = tally(&["start", "--config", config.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("chmod 600 {}", key.display())), "{stderr}");
    assert!(!out.join("data").exists(), "a refused start creates nothing");
}

#[test]
fn init_warns_about_clusters_that_tolerate_no_fault() {
    let dir = tempfile::tempdir().unwrap();
    for validators in ["1", "3"] {
        let out = dir.path().join(validators);
        let output = tally(&["init", "--validators", validators, "--out", out.to_str().unwrap()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("warning:") && stderr.contains("tolerates 0 faulty"), "{stderr}");
        assert!(stderr.contains("4 validators are the fewest that tolerate one"), "{stderr}");
        assert!(out.join("genesis.json").exists());
    }
}

#[test]
fn dev_checks_every_flag_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("dev");
    std::fs::create_dir(&cluster).unwrap();
    let path = cluster.to_str().unwrap();
    for (args, expected) in [
        (&["--except", "9"][..], "--except 9: the cluster has validators 0 to 3"),
        (&["--validators", "2", "--except", "0", "--except", "1"][..], "leaves no validator"),
        (&["--validators", "0"][..], "validators must be"),
        (&["--validators", "4", "--base-port", "65530"][..], "no room"),
    ] {
        let args: Vec<&str> = ["dev", "--dir", path].iter().chain(args).copied().collect();
        let output = tally(&args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("warning"), "{args:?}: nothing is said about a cluster never made: {stderr}");
        let left: Vec<_> = std::fs::read_dir(&cluster).unwrap().collect();
        assert!(left.is_empty(), "{args:?} wrote {left:?}");
    }
    let absent = dir.path().join("absent");
    let output = tally(&["dev", "--dir", absent.to_str().unwrap(), "--except", "4"]);
    assert!(!output.status.success());
    assert!(!absent.exists(), "the directory is not even created");
}

#[test]
fn dev_warns_about_a_cluster_that_tolerates_no_fault() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("dev");
    let base = free_base_port(2);
    let child = Command::new(TALLY)
        .args(["dev", "--dir", cluster.to_str().unwrap(), "--validators", "1", "--base-port", &base.to_string()])
        // Quiet logs, so that the piped standard error cannot fill up.
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tally binary runs");
    let running = Running(Some(child));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(wait_healthy(&[format!("http://127.0.0.1:{}", base + 1)]));
    let (stdout, stderr) = running.stop_with_output("INT");
    assert!(stdout.contains("created a cluster of 1 validators"), "{stdout}");
    assert!(stderr.contains("warning: a cluster of 1 validator tolerates 0 faulty validators"), "{stderr}");
    assert!(stderr.contains("4 validators are the fewest"), "{stderr}");
    assert_eq!(mode(&cluster), 0o700);
    assert_eq!(mode(&cluster.join("data/validator-0")), 0o700);
}

#[test]
fn init_writes_a_cluster_that_start_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cluster");
    let base = free_base_port(8);
    let output = tally(&[
        "init",
        "--validators",
        "4",
        "--hosts",
        "127.0.0.1",
        "--base-port",
        &base.to_string(),
        "--clients",
        "2",
        "--chain-id",
        "9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("warning"), "4 validators tolerate a fault");
    for name in ["genesis.json", "validator-0.toml", "validator-3.key", "client-1.key"] {
        assert!(out.join(name).exists(), "{name}");
        assert_eq!(mode(&out.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&out), 0o700);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!printed.contains("gateway.key"), "no gateway, nothing to say about it:\n{printed}");
    assert!(!out.join("gateway.key").exists(), "no gateway unless asked");
    let genesis: Value = serde_json::from_str(&std::fs::read_to_string(out.join("genesis.json")).unwrap()).unwrap();
    assert_eq!(genesis["chain_id"], 9);
    assert_eq!(genesis["validators"].as_array().unwrap().len(), 4);
    assert_eq!(genesis["clients"].as_array().unwrap().len(), 2);
    // A second init into the same directory is refused and names the problem.
    let again = tally(&["init", "--out", out.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // One validator alone starts, serves its health, and stops on SIGTERM.
    let running = spawn(&["start", "--config", out.join("validator-0.toml").to_str().unwrap()]);
    let url = format!("http://127.0.0.1:{}", base + 1);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(wait_healthy(std::slice::from_ref(&url)));
    let status: Value = runtime.block_on(get(&url, "/v1/status")).1;
    assert_eq!(status["chain_id"], "9");
    assert_eq!(status["validators"].as_array().unwrap().len(), 4);
    // The validator made its data directory (and its parent) for its owner only.
    assert_eq!(mode(&out.join("data")), 0o700);
    assert_eq!(mode(&out.join("data/validator-0")), 0o700);
    let printed = running.stop_with("TERM");
    assert!(printed.contains(&format!("serving {url}")), "{printed}");
}

#[test]
fn start_exits_non_zero_when_its_validator_halts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cluster");
    let base = free_base_port(8);
    let output = tally(&["init", "--base-port", &base.to_string(), "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // A file where the finalized block log's directory belongs: the log cannot open, and the
    // validator halts (storage failures are fail-stop).
    let data = out.join("data").join("validator-0");
    std::fs::create_dir_all(&data).unwrap();
    set_mode(&out.join("data"), 0o700);
    set_mode(&data, 0o700);
    std::fs::write(data.join("validator-finalized_data"), b"not a directory").unwrap();
    let mut child = Command::new(TALLY)
        .args(["start", "--config", out.join("validator-0.toml").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            panic!("a halted validator kept running");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("halted") && stderr.contains("serves nothing"), "{stderr}");
    assert!(stderr.contains("start it again"), "says what to do: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("serving"), "nothing says serving while it refuses to serve: {stdout}");
}

#[test]
fn bad_configs_fail_with_the_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "chain_id = \"one\"\n").unwrap();
    let output = tally(&["start", "--config", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.toml") && stderr.contains("chain_id"), "{stderr}");
    let missing = tally(&["start", "--config", dir.path().join("absent.toml").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("absent.toml"));
}

#[test]
fn version_and_help_with_examples() {
    let version = tally(&["--version"]);
    assert!(version.status.success());
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("tally {}", env!("CARGO_PKG_VERSION")));
    for command in ["init", "start", "dev"] {
        let help = tally(&[command, "--help"]);
        assert!(help.status.success(), "{command}");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("Example"), "{command} --help has no example");
        // The client commands' options are theirs alone.
        for client_option in ["--validator <URL>", "--key <FILE>", "--json", "Cluster options"] {
            assert!(!text.contains(client_option), "{command} --help lists {client_option}:\n{text}");
        }
    }
    for command in ["start", "dev"] {
        let text = String::from_utf8_lossy(&tally(&[command, "--help"]).stdout).into_owned();
        assert!(!text.contains("--chain-id"), "{command} --help lists --chain-id:\n{text}");
    }
    for command in ["account", "create-account", "status"] {
        let help = tally(&[command, "--help"]);
        assert!(help.status.success(), "{command}");
        let text = String::from_utf8_lossy(&help.stdout);
        for client_option in ["--validator <URL>", "--key <FILE>", "--chain-id <ID>", "--json", "Cluster options"] {
            assert!(text.contains(client_option), "{command} --help lacks {client_option}:\n{text}");
        }
    }
    // Given to a command that does not take them, they are refused.
    let output = tally(&["init", "--validator", "http://127.0.0.1:7001", "--out", "never-written"]);
    assert!(!output.status.success());
    assert!(!std::path::Path::new("never-written").exists());
    let help = tally(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--log-format"));
}
