//! A client in another language: `tests/python/tally_sign.py` encodes accounts and a transfer
//! with `struct`, signs the requests with PyNaCl as docs/API.md describes, and posts them with
//! urllib to a real validator; the validator must accept them, and `tally account` must find
//! what they created.
//!
//! And a verifier in another language: `tests/python/tally_verify.py` checks a receipt from a real
//! validator against the genesis file alone, as docs/API.md describes the bytes.
//!
//! Needs Python 3 with PyNaCl (`pip install pynacl`); the test fails, saying so, without it.

mod client_support;

use client_support::Cluster;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/tally_sign.py")
}

fn verifier() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/tally_verify.py")
}

/// Fails the test, with how to fix it, when Python 3 or PyNaCl is missing.
fn require_pynacl() {
    let output = Command::new("python3").args(["-c", "import nacl.signing"]).output();
    match output {
        Err(error) => panic!(
            "python3 is needed to run {} ({error}); install Python 3, then `pip install pynacl`",
            script().display()
        ),
        Ok(output) if !output.status.success() => panic!(
            "PyNaCl is not installed for python3: pip install pynacl\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Ok(_) => {}
    }
}

#[test]
fn a_python_client_signs_requests_that_validators_accept() {
    require_pynacl();
    let cluster = Cluster::start(4, |_, _| {});
    let key = cluster.client_key_path().to_str().unwrap().to_string();

    let output = Command::new("python3")
        .arg(script())
        .args(["--validator", &cluster.urls[1], "--key", &key, "--account-id", "9001"])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "tally_sign.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("create_accounts:") && stdout.contains("create_transfers:"), "{stdout}");

    // What the script created, as the `tally` binary reads it from the validator the script
    // wrote to (another validator may still be a block behind).
    let genesis = cluster.files.genesis.to_str().unwrap().to_string();
    let account = |id: &str| -> Value {
        let output = Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["account", id, "--validator", &cluster.urls[1], "--json", "--genesis", &genesis])
            .env_remove("TALLY_VALIDATORS")
            .env_remove("TALLY_CHAIN_ID")
            .output()
            .expect("run tally");
        assert!(output.status.success(), "tally account {id}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    let first = account("9001");
    assert_eq!(first["flags"], serde_json::json!(["history"]));
    assert_eq!(first["debits_posted"], "1000");
    let second = account("9002");
    assert_eq!((second["credits_posted"].as_str(), second["user_data_64"].as_str()), (Some("1000"), Some("42")));
}

#[test]
fn a_python_verifier_checks_a_receipt_against_the_genesis_alone() {
    require_pynacl();
    let cluster = Cluster::start(4, |_, _| {});
    let key = cluster.client_key_path().to_str().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["create-account", "--id", "9100", "--ledger", "1", "--code", "10", "--request-id", "4242"])
        .args(["--validator", &cluster.urls[0], "--key", &key])
        .env_remove("TALLY_VALIDATORS")
        .env_remove("TALLY_CHAIN_ID")
        .env_remove("TALLY_GENESIS")
        .output()
        .expect("run tally");
    assert!(output.status.success(), "tally create-account: {}", String::from_utf8_lossy(&output.stderr));
    let client = tally_node::hex::encode(tally_chain::keys::public_key(&cluster.signer()).as_ref());
    let verify = |genesis: &std::path::Path| {
        Command::new("python3")
            .arg(verifier())
            .args(["--validator", &cluster.urls[2], "--client", &client, "--id", "4242"])
            .arg("--genesis")
            .arg(genesis)
            .output()
            .expect("run python3")
    };
    let output = verify(&cluster.files.genesis);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "tally_verify.py: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("verified at height ") && stdout.contains(" of 4 validators"), "{stdout}");
    assert!(stdout.contains("accounts event 0: status code 0"), "created: {stdout}");

    // Against another cluster's genesis the signatures are not its validators': status 3.
    let other = tempfile::tempdir().unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["init", "--validators", "4", "--out"])
        .arg(other.path().join("other"))
        .output()
        .expect("run tally init");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let output = verify(&other.path().join("other/genesis.json"));
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("unverified: "));
}
