//! The built `tally benchmark`: it starts its own cluster of `tally start` processes, runs the
//! workload, prints TigerBeetle's figures, validates every transfer and account, and leaves no
//! validator running, whether it finishes or is interrupted.

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TALLY: &str = env!("CARGO_BIN_EXE_tally");

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        // After the name: state, then the parent's pid.
        if rest.split_whitespace().nth(1) == Some(pid.to_string().as_str()) {
            children.push(child);
        }
    }
    children
}

/// Whether `pid` is gone (or a zombie that nobody waits for any more).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn data_dir(pid: u32) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tally-benchmark-{pid}"))
}

#[test]
fn a_small_run_prints_the_figures_validates_and_stops_its_cluster() {
    let output = Command::new(TALLY)
        .args(["benchmark", "--validators", "1", "--transfer-count", "20000", "--account-count", "100"])
        .args(["--batch-size", "4000", "--clients", "2", "--validate"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    let line = |start: &str| {
        stdout.lines().find(|line| line.starts_with(start)).unwrap_or_else(|| panic!("no {start:?} line in:\n{stdout}"))
    };
    let rate: u64 =
        line("load accepted = ").trim_start_matches("load accepted = ").trim_end_matches(" tx/s").parse().unwrap();
    assert!(rate > 0);
    let latency = line("batch latency p1 = ");
    let figures: Vec<u64> = latency.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    assert_eq!(figures.len(), 4, "{latency}");
    assert!(figures.windows(2).all(|pair| pair[0] <= pair[1]), "percentiles rise: {latency}");
    line("finality latency p50 <= ");
    line("finality gap max = ");
    let usage = line("validator 0: cpu = ");
    assert!(usage.contains("peak rss = "), "{usage}");
    assert!(!stdout.contains("validator 1:"), "one validator:\n{stdout}");
    assert!(line("benchmark client: cpu = ").contains("peak rss = "));
    assert_eq!(line("validate: "), "validate: ok: 20000 transfers and 100 accounts match the client's model");
    // Five batches of 4,000 (two in flight), and nothing left behind.
    assert!(stdout.contains("20000 transfers in batches of 4000, 2 in flight"), "{stdout}");
    let run_dir = line("a local cluster of 1 validator process").rsplit_once("data in ").unwrap().1.to_string();
    assert!(!std::path::Path::new(&run_dir).exists(), "{run_dir} is removed");
    // Not a terminal: no progress line.
    assert!(!stderr.contains("creating transfers"), "{stderr}");
}

#[test]
fn json_gives_every_figure_and_the_validators_are_stopped() {
    let output = Command::new(TALLY)
        .args(["benchmark", "--validators", "1", "--transfer-count", "3000", "--account-count", "50"])
        .args(["--zipf", "1.2", "--seed", "42", "--validate", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object:\n{stdout}");
    let report: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(report["transfer_count"], 3000);
    assert_eq!(report["seed"], 42);
    assert_eq!(report["zipf"], 1.2);
    assert_eq!(report["batches"], 1);
    assert_eq!(report["validated"], true);
    assert_eq!(report["mismatches"], 0);
    assert_eq!(report["not_created"], 0);
    assert!(report["load_accepted_tx_per_s"].as_u64().unwrap() > 0);
    for percentile in ["p1", "p50", "p99", "p100"] {
        assert!(report["batch_latency_ms"][percentile].is_u64(), "{report}");
    }
    // The validators' histogram counts the transfers' one submission, not the accounts'.
    assert_eq!(report["finality_latency"]["submissions"], 1, "{report}");
    let validators = report["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 1);
    assert!(validators[0]["peak_rss_bytes"].as_u64().unwrap() > 1024 * 1024);
    assert!(validators[0]["cpu_seconds"].as_f64().unwrap() >= 0.0);
    assert!(report["client"]["peak_rss_bytes"].as_u64().unwrap() > 1024 * 1024, "{report}");
    let pid = validators[0]["pid"].as_u64().unwrap() as u32;
    assert!(is_gone(pid), "validator process {pid} was stopped");
}

#[test]
fn ctrl_c_stops_the_cluster_it_started() {
    let child = Command::new(TALLY)
        .args(["benchmark", "--validators", "2", "--transfer-count", "100000000", "--account-count", "100"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until both validators run and the load has begun.
    let deadline = Instant::now() + Duration::from_secs(60);
    let validators = loop {
        let validators = children_of(pid);
        if validators.len() == 2 && data_dir(pid).join("validator-1.log").exists() {
            break validators;
        }
        assert!(Instant::now() < deadline, "the benchmark did not start its two validators");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(3));
    assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an interrupted run is not a result");
    assert!(stderr.contains("interrupted"), "{stderr}");
    for validator in validators {
        assert!(is_gone(validator), "validator process {validator} still runs");
    }
    // Its files are kept (with the logs) and named.
    assert!(stderr.contains(&data_dir(pid).display().to_string()), "{stderr}");
    let _ = std::fs::remove_dir_all(data_dir(pid));
}

#[test]
fn bad_options_are_refused_before_anything_starts() {
    for (args, expected) in [
        (vec!["--account-count", "1"], "at least 2"),
        (vec!["--batch-size", "8191"], "--batch-size"),
        (vec!["--clients", "0"], "--clients"),
        (vec!["--zipf=-1"], "--zipf"),
        (vec!["--addresses", "http://127.0.0.1:9"], "--key"),
    ] {
        let output = Command::new(TALLY)
            .arg("benchmark")
            .args(&args)
            .env_remove("TALLY_CLIENT_KEY")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// A base port with `count` free ports after it (a moment ago), below the ephemeral range.
fn free_base_port(count: u16) -> u16 {
    use std::net::{Ipv4Addr, TcpListener};
    for attempt in 0..200u32 {
        let seed = std::process::id().wrapping_mul(7_307).wrapping_add(attempt.wrapping_mul(92_821));
        let base = 20_000 + (seed % 12_000) as u16;
        let listeners: Vec<_> =
            (0..count).map_while(|offset| TcpListener::bind((Ipv4Addr::LOCALHOST, base + offset)).ok()).collect();
        if listeners.len() == count as usize {
            return base;
        }
    }
    panic!("no free range of {count} ports");
}

#[test]
fn an_existing_cluster_is_driven_with_the_client_options_and_runs_do_not_collide() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("dev");
    let base = free_base_port(2);
    let mut dev = Command::new(TALLY)
        .args(["dev", "--validators", "1", "--base-port", &base.to_string(), "--dir", cluster.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // `tally dev` prints how to stop it once every validator serves.
    let mut lines = std::io::BufReader::new(dev.stdout.take().unwrap()).lines();
    assert!(lines.any(|line| line.unwrap().starts_with("Ctrl-C stops the cluster")), "tally dev did not start");
    let url = format!("http://127.0.0.1:{}", base + 1);
    let key = cluster.join("client-0.key");
    for run in 0..2 {
        let output = Command::new(TALLY)
            .args(["benchmark", "--addresses", &url, "--key", key.to_str().unwrap()])
            .args(["--transfer-count", "5000", "--account-count", "50", "--validate"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "run {run}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.starts_with(&format!("the cluster at {url}\n")), "{stdout}");
        assert!(stdout.contains("load accepted = "), "{stdout}");
        assert!(stdout.contains("validate: ok: 5000 transfers and 50 accounts"), "run {run}: {stdout}");
        assert!(!stdout.contains("validator 0: cpu = "), "no usage for validators it did not start: {stdout}");
    }
    assert!(Command::new("kill").args(["-INT", &dev.id().to_string()]).status().unwrap().success());
    assert!(dev.wait().unwrap().success());
}
