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
    assert!(report["finality_latency"]["submissions"].as_u64().unwrap() >= 2, "{report}");
    let validators = report["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 1);
    assert!(validators[0]["peak_rss_bytes"].as_u64().unwrap() > 1024 * 1024);
    assert!(validators[0]["cpu_seconds"].as_f64().unwrap() >= 0.0);
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
