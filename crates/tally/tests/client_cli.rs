//! The `tally` client commands end to end: the built binary against a real cluster of four
//! validators on loopback, with tables, JSON, files, environment variables and exit statuses.

mod client_support;

use client_support::{Cluster, dead_url};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `tally` with `args` and no `TALLY_*` variables from the test's environment.
fn tally(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command.args(args);
    for name in ["TALLY_VALIDATORS", "TALLY_CLIENT_KEY", "TALLY_CHAIN_ID", "TALLY_GENESIS"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("run tally")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a command that must succeed and returns what it printed.
fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = tally(args, env);
    assert!(output.status.success(), "tally {args:?} failed:\n{}\n{}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// Runs a command that must succeed with `--json` and returns its JSON.
fn ok_json(args: &[&str], env: &[(&str, &str)]) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let text = ok(&args, env);
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("tally {args:?} printed no JSON ({error}):\n{text}"))
}

fn statuses(value: &Value) -> Vec<&str> {
    value["results"].as_array().expect("results").iter().map(|result| result["status"].as_str().unwrap()).collect()
}

fn ids(value: &Value, list: &str) -> Vec<String> {
    value[list].as_array().expect("a list").iter().map(|item| item["id"].as_str().unwrap().to_string()).collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn client_commands_against_a_cluster() {
    let cluster = Cluster::start(4, |_, _| {});
    let key = cluster.client_key_path().to_str().unwrap().to_string();
    let dead = dead_url();
    // A dead validator first: every command fails over to the next. No --chain-id: the
    // commands ask the cluster.
    let cluster_args = ["--validator", &dead, "--validator", &cluster.urls[1], "--validator", &cluster.urls[2]];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&cluster_args).chain(["--key", &key].iter()).map(|arg| arg.to_string()).collect()
    };
    let run = |args: &[&str]| ok(&with(args).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let run_json = |args: &[&str]| ok_json(&with(args).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let fail = |args: &[&str]| {
        let output = tally(&with(args).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        assert!(!output.status.success(), "tally {args:?} should fail:\n{}", stdout(&output));
        (stdout(&output), stderr(&output))
    };

    // One account, as a table.
    let text = run(&["create-account", "--id", "1", "--ledger", "1", "--code", "10", "--flags", "history"]);
    assert!(text.contains("final at height"), "{text}");
    // Verified against the genesis beside the key file, not taken on the validator's word.
    assert!(
        text.lines().any(|line| line.starts_with("verified at height ") && line.ends_with(" of 4 validators")),
        "{text}"
    );
    assert!(
        text.lines().any(|line| line.starts_with("0  ") && line.contains(" 1 ") && line.contains("created")),
        "{text}"
    );

    // A batch from a file, as JSON; account 3 may not go into debt.
    let dir = tempfile::tempdir().unwrap();
    let accounts = write(
        dir.path(),
        "accounts.json",
        r#"{"accounts": [{"id": "2", "ledger": 1, "code": 10},
                         {"id": "3", "ledger": 1, "code": 10, "flags": ["debits_must_not_exceed_credits"]}]}"#,
    );
    let created = run_json(&["create-accounts", "--file", &accounts]);
    assert_eq!(statuses(&created), ["created", "created"]);
    assert_eq!(created["requests"].as_array().unwrap().len(), 1);

    // One transfer with a request id: running it again answers the first outcome.
    let transfer = ["transfer", "--id", "100", "--debit", "1", "--credit", "2", "--amount", "25", "--ledger", "1"];
    let transfer: Vec<&str> = transfer.iter().copied().chain(["--code", "1", "--request-id", "555"]).collect();
    let first = run_json(&transfer);
    assert_eq!(statuses(&first), ["created"]);
    assert_eq!(first["requests"][0]["request_id"], "555");
    let mut again = run_json(&transfer);
    let mut first = first;
    // The receipt a write printed checks offline against the genesis, and a changed one does not.
    let receipt = first["requests"][0]["verified"]["receipt"].as_str().unwrap().to_string();
    let genesis = cluster.files.genesis.to_str().unwrap().to_string();
    let saved = write(dir.path(), "receipt.hex", &receipt);
    let text = ok(&["verify", &saved, "--genesis", &genesis], &[]);
    assert!(text.starts_with("request 555 of client ") && text.contains("verified at height "), "{text}");
    assert!(text.lines().any(|line| line.starts_with("0 ") && line.contains("created")), "{text}");
    let mut changed = receipt.into_bytes();
    let middle = changed.len() / 2;
    changed[middle] = if changed[middle] == b'0' { b'1' } else { b'0' };
    let tampered = write(dir.path(), "tampered.hex", std::str::from_utf8(&changed).unwrap());
    let output = tally(&["verify", &tampered, "--genesis", &genesis], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert!(stderr(&output).starts_with("unverified: "), "{}", stderr(&output));
    for answer in [&mut first, &mut again] {
        let verified = answer["requests"][0].as_object_mut().unwrap().remove("verified");
        assert!(verified.is_some_and(|verified| verified["signers"].as_u64().unwrap() >= 3), "{answer}");
    }
    assert_eq!(again, first, "the same request id applies once and answers the same");
    // The same request id for another transfer is refused, and nothing applies.
    let reused: Vec<&str> = transfer.iter().map(|arg| if *arg == "25" { "26" } else { arg }).collect();
    let (_, error) = fail(&reused);
    assert!(error.contains("request id 555 was already used for other events"), "{error}");

    // Against another cluster's genesis no receipt verifies: status 3, and a message that says so.
    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().join("other");
    ok(&["init", "--validators", "4", "--out", other_dir.to_str().unwrap()], &[]);
    let other_genesis = other_dir.join("genesis.json");
    let chain_id = cluster.chain_id.to_string();
    let unverified = with(&["create-account", "--id", "60", "--ledger", "1", "--code", "11", "--chain-id", &chain_id])
        .into_iter()
        .chain(["--genesis".to_string(), other_genesis.to_str().unwrap().to_string()])
        .collect::<Vec<_>>();
    let output = tally(&unverified.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(output.status.code(), Some(3), "{}\n{}", stdout(&output), stderr(&output));
    assert!(stderr(&output).starts_with("unverified: "), "{}", stderr(&output));
    assert!(stderr(&output).contains(&cluster.urls[1]), "names the validators: {}", stderr(&output));
    // A chain id that is not the genesis's is refused before anything is sent.
    let (_, error) = fail(&["create-account", "--id", "62", "--ledger", "1", "--code", "11", "--chain-id", "999"]);
    assert!(error.contains("--chain-id 999 is not the chain id of the genesis"), "{error}");
    // --no-verify takes the answering validator's word.
    let text = run(&["create-account", "--id", "61", "--ledger", "1", "--code", "11", "--no-verify"]);
    assert!(text.contains("final at height") && !text.contains("verified at"), "{text}");

    // A refused transfer prints its status and exits with an error.
    let (text, error) = fail(&[
        "transfer", "--id", "101", "--debit", "3", "--credit", "1", "--amount", "5", "--ledger", "1", "--code", "1",
    ]);
    assert!(text.contains("exceeds_credits"), "{text}");
    assert!(error.contains("1 of 1 events were not created"), "{error}");

    // Transfers from a file.
    let transfers = write(
        dir.path(),
        "transfers.json",
        r#"[{"id": "102", "debit_account_id": "2", "credit_account_id": "1", "amount": "7", "ledger": 1, "code": 1},
            {"id": "103", "debit_account_id": "1", "credit_account_id": "3", "amount": "9", "ledger": 1, "code": 2}]"#,
    );
    assert_eq!(statuses(&run_json(&["create-transfers", "--file", &transfers])), ["created", "created"]);

    // Lookups.
    let account = run_json(&["account", "1"]);
    assert_eq!((account["debits_posted"].as_str(), account["credits_posted"].as_str()), (Some("34"), Some("7")));
    assert_eq!(account["flags"], serde_json::json!(["history"]));
    let card = run(&["account", "1"]);
    assert!(card.lines().any(|line| line.starts_with("debits_posted") && line.ends_with(" 34")), "{card}");
    // Reads are verified too: the account is the one a quorum's certificate commits to.
    assert!(
        card.lines().any(|line| line.starts_with("verified at height ") && line.ends_with(" of 4 validators")),
        "{card}"
    );
    let proven = &account["verified"];
    assert!(proven["signers"].as_u64().unwrap() >= 3, "{account}");
    // The state receipt a read printed checks offline, and names what it proves.
    let saved = write(dir.path(), "state.hex", proven["receipt"].as_str().unwrap());
    let text = ok(&["verify", &saved, "--genesis", &genesis], &[]);
    assert!(text.starts_with("1 account(s), 0 transfer(s) and 0 balance history entries as of height "), "{text}");
    assert!(text.lines().any(|line| line.starts_with("1 ") && line.contains(" 34 ")), "{text}");
    let mut changed = proven["receipt"].as_str().unwrap().to_string().into_bytes();
    let byte = 300; // Inside the account: after the parts (208 bytes), the set digest (32) and the count (2).
    changed[2 * byte] = if changed[2 * byte] == b'0' { b'1' } else { b'0' };
    let tampered = write(dir.path(), "state-tampered.hex", std::str::from_utf8(&changed).unwrap());
    let output = tally(&["verify", &tampered, "--genesis", &genesis], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert!(stderr(&output).starts_with("unverified: ") && stderr(&output).contains("account"), "{}", stderr(&output));
    // --no-verify reads take the validator's word and say nothing of verification.
    let card = run(&["account", "1", "--no-verify"]);
    assert!(!card.contains("verified at"), "{card}");
    let (_, error) = fail(&["account", "999"]);
    assert!(error.contains("account 999 does not exist"), "{error}");
    assert_eq!(ids(&run_json(&["lookup-accounts", "1", "999", "3"]), "accounts"), ["1", "3"]);
    let table = run(&["lookup-accounts", "1", "2"]);
    assert_eq!(table.lines().count(), 4, "a header, two rows and the verified line:\n{table}");
    assert_eq!(run_json(&["lookup-transfer", "102"])["amount"], "7");
    assert_eq!(ids(&run_json(&["lookup-transfers", "100", "103"]), "transfers"), ["100", "103"]);

    // An account's transfers and balances, and queries.
    assert_eq!(ids(&run_json(&["account-transfers", "1"]), "transfers"), ["100", "102", "103"]);
    assert_eq!(ids(&run_json(&["account-transfers", "1", "--credits", "--reversed"]), "transfers"), ["102"]);
    let balances = run_json(&["balances", "1", "--limit", "2"]);
    let balances = balances["balances"].as_array().unwrap();
    assert_eq!(balances.len(), 2);
    assert_eq!(
        (balances[1]["debits_posted"].as_str(), balances[1]["credits_posted"].as_str()),
        (Some("25"), Some("7"))
    );
    assert_eq!(ids(&run_json(&["query-accounts", "--ledger", "1", "--code", "10"]), "accounts"), ["1", "2", "3"]);
    assert_eq!(ids(&run_json(&["query-transfers", "--code", "2"]), "transfers"), ["103"]);
    assert!(run(&["query-transfers", "--code", "9"]).contains("(none)"));

    // The status, from the first validator that answers, and from each.
    let status = run(&["status"]);
    assert!(status.contains("chain_id") && status.contains("(self)"), "{status}");
    assert!(status.contains("faults_tolerated    1 of 4 validators (quorum 3)"), "{status}");
    assert!(!status.contains("warning"), "{status}");
    let (text, error) = fail(&["status", "--each", "--json"]);
    let each: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(each[0]["error"]["code"], "unavailable");
    assert_eq!(each[0]["error"]["message"], format!("validator {dead} is down: connection refused"));
    assert_eq!(each[1]["status"]["chain_id"], "1");
    assert!(error.contains("1 of 3 validators did not answer"), "{error}");
    // As a table: the down validator's row says so, and the others' rows follow.
    let (text, _) = fail(&["status", "--each"]);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 4, "a header and three rows:\n{text}");
    assert!(
        rows[1].starts_with(&dead) && rows[1].ends_with(&format!("validator {dead} is down: connection refused")),
        "{text}"
    );
    for (row, url) in rows[2..].iter().zip(&cluster.urls[1..3]) {
        assert!(row.starts_with(url.as_str()) && row.trim_end().ends_with(" -"), "{text}");
    }

    // The environment instead of flags, with the dead validator first in the list.
    let validators = format!("{dead},{}", cluster.urls[3]);
    let env = [("TALLY_VALIDATORS", validators.as_str()), ("TALLY_CLIENT_KEY", key.as_str()), ("TALLY_CHAIN_ID", "1")];
    let created = ok_json(&["create-account", "--id", "4", "--ledger", "1", "--code", "10"], &env);
    assert_eq!(statuses(&created), ["created"]);
    assert_eq!(ok_json(&["account", "4"], &env)["id"], "4");

    // Signing for another chain is refused with the validators' code, not retried forever
    // (without --no-verify, the genesis beside the key refuses the chain id before anything is sent).
    let output = tally(
        &with(&["create-account", "--id", "5", "--ledger", "1", "--code", "1", "--chain-id", "2", "--no-verify"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("bad_signature"), "{}", stderr(&output));

    // Mistakes are explained.
    let output =
        tally(&["create-account", "--id", "6", "--ledger", "1", "--code", "1", "--validator", &cluster.urls[1]], &[]);
    assert!(stderr(&output).contains("TALLY_CLIENT_KEY"), "{}", stderr(&output));
    let output = tally(&["account", "1"], &[]);
    assert!(stderr(&output).contains("TALLY_VALIDATORS"), "{}", stderr(&output));
    let (_, error) = fail(&["create-account", "--id", "7", "--ledger", "1", "--code", "1", "--flags", "histroy"]);
    assert!(error.contains("unknown flag \"histroy\""), "{error}");
    let broken = write(dir.path(), "broken.json", r#"[{"id": "8", "ledger": -1}]"#);
    let (_, error) = fail(&["create-accounts", "--file", &broken]);
    assert!(error.contains("accounts[0].ledger"), "{error}");
}

#[test]
fn wrong_urls_fail_at_once_with_the_url_and_the_cause() {
    let cluster = Cluster::start(4, |_, _| {});
    let key = cluster.client_key_path().to_str().unwrap().to_string();
    let dead = dead_url();
    // A validator's peer-to-peer port: it takes the connection but speaks no HTTP.
    let api_port: u16 = cluster.urls[0].rsplit(':').next().unwrap().parse().unwrap();
    let p2p = format!("http://127.0.0.1:{}", api_port - 1);
    // A web server that is not Tally: it answers 404 with a page.
    let (web, _server) = not_tally_server();

    let read = ["account", "1", "--no-verify"];
    let write = ["create-account", "--id", "1", "--ledger", "1", "--code", "10", "--key", &key];
    for (url, expected) in [
        (&dead, "is down: connection refused"),
        (&p2p, "Tally validator"),
        (&web, "does not answer as a Tally validator"),
    ] {
        // Reads and writes alike (a write first asks for the chain id), with the environment's
        // retry bounds far away: a read may retry for 10 s, a write for 60 s.
        for command in [&read[..], &write[..]] {
            let args: Vec<&str> = command.iter().copied().chain(["--validator", url.as_str()]).collect();
            let started = std::time::Instant::now();
            let output = tally(&args, &[]);
            let elapsed = started.elapsed();
            assert!(!output.status.success(), "{args:?}");
            let error = stderr(&output);
            assert!(error.contains(url.as_str()) && error.contains(expected), "{args:?}: {error}");
            assert!(
                !error.contains("chain id") || command == &write[..],
                "{args:?}: a read asks for no chain id: {error}"
            );
            assert!(elapsed < std::time::Duration::from_secs(5), "{args:?} took {elapsed:?}: {error}");
        }
    }
}

/// A plain HTTP server that answers every request 404 with an HTML page, and the thread that
/// serves it (for as long as the test runs).
fn not_tally_server() -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let page = "<html>nothing here</html>";
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    (url, server)
}
