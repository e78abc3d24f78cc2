//! A tampering proxy in front of one validator alters each part of its answers in turn: a
//! balance, a result's status, a height, a header field, a certificate signer, a signature, a
//! certificate cut to f + 1 real signatures, a receipt for another account or request, a receipt
//! of another chain's validators, and an old receipt replayed. A verifying SDK client and the CLI
//! refuse every one (the CLI with status 3 and `unverified:`), and, given an honest validator
//! too, fail over and get the right answer from it.

mod client_support;

use client_support::{Cluster, tally, test_options, text};
use commonware_cryptography::certificate::Signers;
use commonware_utils::Participant;
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use tally_chain::certified::sign_finalization;
use tally_chain::keys::{ValidatorSigner, public_key, signer_from_seed};
use tally_chain::receipt::OutcomeReceipt;
use tally_chain::state_receipt::StateReceipt;
use tally_chain::{Genesis, RequestResult};
use tally_client::{Client, ClientError};
use tally_ledger::{Account, CreateAccountStatus, Transfer};
use tally_node::genesis_file::GenesisFile;

/// What the proxy does to a 200 answer's JSON: the request's method and path, and the answer.
type Tamper = Box<dyn Fn(&str, Value) -> Value + Send>;

/// A proxy to `upstream` that applies the current tamper to every JSON answer with status 200.
struct Proxy {
    url: String,
    tamper: Arc<Mutex<Tamper>>,
}

impl Proxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let tamper: Arc<Mutex<Tamper>> = Arc::new(Mutex::new(Box::new(|_, value| value)));
        let shared = tamper.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (upstream, tamper) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &upstream, &tamper);
                });
            }
        });
        Self { url, tamper }
    }

    fn set(&self, tamper: impl Fn(&str, Value) -> Value + Send + 'static) {
        *self.tamper.lock().unwrap() = Box::new(tamper);
    }
}

/// One exchange: reads the request, sends it upstream, alters the answer, writes it back.
fn serve(mut stream: TcpStream, upstream: &str, tamper: &Mutex<Tamper>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("content-type:") {
            headers.push(line.trim_end().to_string());
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, answer) = exchange(upstream, request_line.trim_end(), &headers, &body)?;
    let target = request_line.split(' ').take(2).collect::<Vec<_>>().join(" ");
    let answer = match serde_json::from_slice::<Value>(&answer) {
        Ok(value) if status == 200 => serde_json::to_vec(&(tamper.lock().unwrap())(&target, value)).unwrap(),
        _ => answer,
    };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        answer.len()
    )?;
    stream.write_all(&answer)
}

/// Sends one request to `upstream` and returns the status and body of its answer.
fn exchange(upstream: &str, request_line: &str, headers: &[String], body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut connection = TcpStream::connect(upstream)?;
    let mut head =
        format!("{request_line}\r\nhost: {upstream}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    connection.write_all(head.as_bytes())?;
    connection.write_all(body)?;
    let mut answer = Vec::new();
    connection.read_to_end(&mut answer)?;
    let split = answer.windows(4).position(|window| window == b"\r\n\r\n").unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let mut body = answer[(split + 4).min(answer.len())..].to_vec();
    if chunked {
        body = unchunk(&body);
    }
    Ok((status, body))
}

fn unchunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = bytes.windows(2).position(|window| window == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..end]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.extend_from_slice(&bytes[end + 2..end + 2 + size]);
        bytes = &bytes[end + 2 + size + 2..];
    }
    body
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap()).collect()
}

/// The receipt of an answer: a read's (`proof.receipt`) or a write's (`receipt`).
fn receipt_field(value: &mut Value) -> Option<&mut Value> {
    if value.get("proof").is_some() {
        return value.get_mut("proof").and_then(|proof| proof.get_mut("receipt"));
    }
    value.get_mut("receipt")
}

/// Applies `change` to the bytes of the answer's receipt.
fn with_receipt_bytes(mut value: Value, change: impl Fn(&mut Vec<u8>)) -> Value {
    if let Some(field) = receipt_field(&mut value) {
        let mut bytes = unhex(field.as_str().unwrap());
        change(&mut bytes);
        *field = Value::String(hex(&bytes));
    }
    value
}

/// The ways the proxy lies, each by name.
struct Lies {
    genesis: Genesis,
    /// Three validators of another chain (a quorum there), and its genesis.
    strangers: (Genesis, Vec<ValidatorSigner>),
}

impl Lies {
    /// A state receipt's or an outcome receipt's certified header, changed by `change` and
    /// encoded again.
    fn recertify(&self, value: Value, change: impl Fn(&mut tally_chain::certified::CertifiedHeader)) -> Value {
        let genesis = self.genesis.clone();
        with_receipt_bytes(value, move |bytes| {
            if let Ok(mut receipt) = StateReceipt::decode(bytes, &genesis) {
                change(&mut receipt.certified);
                *bytes = receipt.encode();
            } else if let Ok(mut receipt) = OutcomeReceipt::decode(bytes, &genesis) {
                change(&mut receipt.above);
                *bytes = receipt.encode();
            } else {
                panic!("the answer's receipt decodes");
            }
        })
    }

    /// The tamper for lie `name`, on answers to reads and to receipt requests.
    fn tamper(&self, name: &str) -> impl Fn(&str, Value) -> Value + Send + 'static + use<> {
        let lies = Lies { genesis: self.genesis.clone(), strangers: self.strangers.clone() };
        let name = name.to_string();
        move |_, value: Value| match name.as_str() {
            // The balance in the answer and in the proven account, alike.
            "balance" => {
                let genesis = lies.genesis.clone();
                let mut value = with_receipt_bytes(value, move |bytes| {
                    let mut receipt = StateReceipt::decode(bytes, &genesis).unwrap();
                    receipt.proof.accounts[0].0.credits_posted += 1_000;
                    *bytes = receipt.encode();
                });
                if let Some(accounts) = value.get_mut("accounts").and_then(Value::as_array_mut) {
                    accounts[0]["credits_posted"] = Value::String("1000025".into());
                }
                value
            }
            // A write's result: created where the ledger said it exists, or the reverse.
            "status" => {
                let genesis = lies.genesis.clone();
                with_receipt_bytes(value, move |bytes| {
                    let mut receipt = OutcomeReceipt::decode(bytes, &genesis).unwrap();
                    if let RequestResult::Accounts(results) = &mut receipt.outcome.result {
                        results[0].status = match results[0].status {
                            CreateAccountStatus::Created => CreateAccountStatus::Exists,
                            _ => CreateAccountStatus::Created,
                        };
                    }
                    *bytes = receipt.encode();
                })
            }
            "height" => lies.recertify(value, |certified| certified.header.height += 1),
            "header" => lies.recertify(value, |certified| certified.header.timestamp_ns += 1),
            // The certificate names a validator that did not sign in place of one that did
            // (same count, signatures unchanged).
            "signer" => lies.recertify(value, |certified| {
                let certificate = &mut certified.finalization.certificate;
                let mut signers: Vec<Participant> = certificate.signers.iter().collect();
                let absent = (0..4).map(Participant::new).find(|index| !signers.contains(index)).unwrap();
                *signers.last_mut().unwrap() = absent;
                signers.sort();
                certificate.signers = Signers::new(4, signers).unwrap();
            }),
            "signature" => with_receipt_bytes(value, |bytes| {
                let last = bytes.len() - 1;
                bytes[last] ^= 0x40;
            }),
            // The certificate cut to its first two signatures: f + 1 real ones, not a quorum.
            "two signatures" => lies.recertify(value, |certified| {
                let certificate = &mut certified.finalization.certificate;
                let first_two: Vec<_> = certificate.signers.iter().take(2).collect();
                certificate.signers = Signers::new(4, first_two).unwrap();
                certificate.signatures.truncate(2);
            }),
            // Signed by a quorum of another chain's validators.
            "another chain" => {
                let (genesis, signers) = lies.strangers.clone();
                lies.recertify(value, move |certified| {
                    certified.finalization = sign_finalization(certified.certified(), &signers, &genesis);
                })
            }
            other => panic!("no lie named {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampered_answer_is_refused_and_the_honest_one_taken() {
    let cluster = Cluster::start(4, |_, _| {});
    let genesis = GenesisFile::load(&cluster.files.genesis).unwrap().genesis().clone();
    let genesis_path = cluster.files.genesis.to_str().unwrap().to_string();
    let strangers: Vec<ValidatorSigner> = (0..4).map(|seed| signer_from_seed(77_000 + seed)).collect();
    let stranger_genesis = Genesis::new(
        genesis.chain_id(),
        strangers.iter().map(public_key).collect(),
        genesis.clients().cloned().collect(),
        genesis.timestamp_ns(),
    )
    .unwrap();
    let lies = Lies { genesis: genesis.clone(), strangers: (stranger_genesis, strangers[..3].to_vec()) };
    let proxy = Proxy::start(&cluster.urls[0]);
    let honest = cluster.urls[1].clone();
    let client = |urls: &[&str]| {
        Client::with_options(urls, cluster.chain_id, cluster.signer(), test_options())
            .unwrap()
            .verifying(genesis.clone())
    };

    // Accounts 1 and 2, 25 from 1 to 2; an old answer about account 2 kept from before.
    let writer = client(&[&honest]);
    writer.create_accounts(&[1, 2].map(|id| Account { id, ledger: 1, code: 1, ..Account::default() })).await.unwrap();
    let old_answer = Arc::new(Mutex::new(None::<Value>));
    let keep = old_answer.clone();
    proxy.set(move |target, value| {
        if target.starts_with("POST /v1/accounts/lookup") {
            *keep.lock().unwrap() = Some(value.clone());
        }
        value
    });
    // (Validator 0 may be a block behind the one that answered the write: ask until it has it.)
    let mut kept = None;
    for _ in 0..100 {
        if let Ok(Some(account)) = client(&[&proxy.url]).lookup_account(2).await {
            kept = Some(account);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(kept.expect("validator 0 has account 2").credits_posted, 0);
    let transfer = Transfer {
        id: 10,
        debit_account_id: 1,
        credit_account_id: 2,
        amount: 25,
        ledger: 1,
        code: 1,
        ..Transfer::default()
    };
    writer.create_transfers(&[transfer]).await.unwrap();

    // Reads: each lie refused by the SDK and the CLI; with an honest validator, its answer taken.
    let read_lies = ["balance", "height", "header", "signer", "signature", "two signatures", "another chain"];
    for lie in read_lies {
        proxy.set(lies.tamper(lie));
        match client(&[&proxy.url]).lookup_account(2).await {
            Err(error @ ClientError::Unverified { .. }) => {
                assert!(error.to_string().starts_with("unverified: "), "{lie}: {error}")
            }
            other => panic!("{lie}: the SDK took a tampered read: {other:?}"),
        }
        let account = client(&[&proxy.url, &honest]).lookup_account(2).await.unwrap().unwrap();
        assert_eq!(account.credits_posted, 25, "{lie}: the honest validator's answer");

        let output = tally(&["account", "2", "--validator", &proxy.url, "--genesis", &genesis_path]);
        assert_eq!(output.status.code(), Some(3), "{lie}: {}\n{}", text(&output.stdout), text(&output.stderr));
        assert!(text(&output.stderr).starts_with("unverified: "), "{lie}: {}", text(&output.stderr));
        let output =
            tally(&["account", "2", "--validator", &proxy.url, "--validator", &honest, "--genesis", &genesis_path]);
        assert!(output.status.success(), "{lie}: {}", text(&output.stderr));
        let card = text(&output.stdout);
        assert!(card.lines().any(|line| line.starts_with("credits_posted") && line.ends_with(" 25")), "{lie}: {card}");
        assert!(card.contains("verified at height "), "{lie}: {card}");
    }

    // A receipt for another account: account 1's, asked for account 2. The SDK does not take
    // it for account 2, and with one validator's word only, not as proof that 2 is absent.
    let other_account = {
        let client = client(&[&honest]);
        let (_, proven) = client.lookup_accounts_proven(&[1]).await.unwrap();
        proven.unwrap().receipt
    };
    let other_hex = hex(&other_account);
    proxy.set(move |target, mut value| {
        if target.starts_with("POST /v1/accounts/lookup") {
            value["proof"]["receipt"] = Value::String(other_hex.clone());
        }
        value
    });
    assert!(matches!(client(&[&proxy.url]).lookup_account(2).await, Err(ClientError::Unverified { .. })));
    assert_eq!(client(&[&proxy.url, &honest]).lookup_account(2).await.unwrap().unwrap().credits_posted, 25);
    let output = tally(&["account", "2", "--validator", &proxy.url, "--genesis", &genesis_path]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));

    // An old receipt replayed: true once, but older than what this client has seen since (a
    // write it made through the same validator, which the proxy passes on untouched).
    let old = old_answer.lock().unwrap().clone().expect("the old answer was kept");
    proxy.set(move |target, value| if target.starts_with("POST /v1/accounts/lookup") { old.clone() } else { value });
    let reader = client(&[&proxy.url, &honest]);
    let more = Transfer { id: 11, amount: 5, ..transfer };
    let written = reader.create_transfers(&[more]).await.unwrap();
    assert_eq!(reader.height_seen(), written.height());
    assert_eq!(reader.lookup_account(2).await.unwrap().unwrap().credits_posted, 30, "not the replayed 0");
    // A client that has seen nothing newer cannot tell the replay from a validator that lags.
    assert_eq!(client(&[&proxy.url]).lookup_account(2).await.unwrap().unwrap().credits_posted, 0);

    // Writes: each lie about a receipt refused; with an honest validator, its receipt taken.
    let mut id = 100;
    for lie in ["status", "height", "header", "signer", "signature", "two signatures", "another chain"] {
        proxy.set(lies.tamper(lie));
        id += 1;
        let account = Account { id, ledger: 1, code: 1, ..Account::default() };
        match client(&[&proxy.url]).create_accounts(&[account]).await {
            Err(error @ ClientError::Unverified { .. }) => {
                assert!(error.to_string().starts_with("unverified: "), "{lie}: {error}")
            }
            other => panic!("{lie}: the SDK took a tampered outcome: {other:?}"),
        }
        // Created (by the request the proxy passed on), whatever the lie said.
        id += 1;
        let account = Account { id, ledger: 1, code: 1, ..Account::default() };
        let outcome = client(&[&proxy.url, &honest]).create_accounts(&[account]).await.unwrap();
        assert_eq!(outcome.results[0].status, CreateAccountStatus::Created, "{lie}");
        id += 1;
        let output = tally(&[
            "create-account",
            "--id",
            &id.to_string(),
            "--ledger",
            "1",
            "--code",
            "1",
            "--validator",
            &proxy.url,
            "--key",
            cluster.client_key_path().to_str().unwrap(),
            "--genesis",
            &genesis_path,
        ]);
        assert_eq!(output.status.code(), Some(3), "{lie}: {}\n{}", text(&output.stdout), text(&output.stderr));
        assert!(text(&output.stderr).starts_with("unverified: "), "{lie}: {}", text(&output.stderr));
    }
}
