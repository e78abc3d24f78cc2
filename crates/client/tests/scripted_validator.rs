//! The client against scripted validators: minimal HTTP servers that answer as a test says
//! (busy, pending, lost requests, refusals midway through a batch, malformed answers), to pin
//! down the retry rules exactly. End-to-end tests against real validators are in
//! `crates/tally/tests/client_sdk.rs`.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally_chain::keys::signer_from_seed;
use tally_chain::request::{RequestKind, events_digest};
use tally_client::{Client, ClientError, ClientOptions, EventResults};
use tally_ledger::{Account, CreateAccountStatus};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// One HTTP request as the scripted validator saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    /// A JSON body as sent, or a binary request (`application/octet-stream`) in its JSON form.
    body: Option<Value>,
    content_type: Option<String>,
}

/// A body as the scripted validator reads it: a signed request's binary encoding, decoded and
/// written as the API's JSON form so that the scripts read both alike, or JSON.
fn read_body(content_type: Option<&str>, body: &[u8]) -> Option<Value> {
    use commonware_codec::DecodeExt as _;
    if content_type == Some("application/octet-stream") {
        let request = tally_chain::Request::decode(body.to_vec()).expect("a binary body is one request's encoding");
        return Some(tally_client::wire::request_to_json(&request));
    }
    serde_json::from_slice(body).ok()
}

/// An answer: status, extra headers, JSON body.
type Answer = (u16, Vec<(&'static str, String)>, Value);

/// Starts a validator that answers the `n`th request it sees (from 0) with `script(n, seen)`.
async fn scripted(script: impl Fn(usize, &Seen) -> Answer + Send + Sync + 'static) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let server_log = log.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).await.unwrap();
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap().to_string(), parts.next().unwrap().to_string());
            let mut length = 0usize;
            let mut content_type = None;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-type")
                {
                    content_type = Some(value.trim().to_string());
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await.unwrap();
            let seen = Seen { method, path, body: read_body(content_type.as_deref(), &body), content_type };
            let index = {
                let mut log = server_log.lock().unwrap();
                log.push(seen.clone());
                log.len() - 1
            };
            let (status, headers, answer) = script(index, &seen);
            let text = answer.to_string();
            let mut response = format!(
                "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                text.len()
            );
            for (name, value) in headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str("\r\n");
            response.push_str(&text);
            write.write_all(response.as_bytes()).await.unwrap();
            write.shutdown().await.unwrap();
        }
    });
    (url, log)
}

/// The outcome a validator answers for a signed request of accounts: every event created.
fn created(request: &Value) -> Value {
    let events = request["events"].as_array().unwrap().len();
    let accounts = tally_api::accounts_from_json(&request["events"], "events").unwrap();
    let digest = events_digest(RequestKind::CreateAccounts, &tally_ledger::encode_accounts(&accounts));
    json!({
        "request_id": request["id"], "client": request["client"], "height": "7", "timestamp": "1000",
        "events_digest": tally_client::wire::hex(&digest),
        "results": (0..events).map(|index| json!({"index": index, "status": "created", "timestamp": (1000 + index).to_string()})).collect::<Vec<_>>(),
    })
}

fn error(code: &str) -> Value {
    json!({"error": {"code": code, "field": "", "message": "scripted"}})
}

fn options() -> ClientOptions {
    ClientOptions {
        submit_wait: Duration::from_secs(10),
        read_wait: Duration::from_secs(10),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        ..ClientOptions::default()
    }
}

fn client(urls: &[String], options: ClientOptions) -> Client {
    Client::with_options(urls, 1, signer_from_seed(11), options).unwrap()
}

fn account(id: u128) -> Account {
    Account { id, ledger: 1, code: 1, ..Account::default() }
}

/// The POSTed requests a validator saw.
fn posts(log: &Mutex<Vec<Seen>>) -> Vec<Value> {
    log.lock().unwrap().iter().filter(|seen| seen.method == "POST").map(|seen| seen.body.clone().unwrap()).collect()
}

#[tokio::test]
async fn busy_is_retried_after_retry_after_within_a_bound() {
    let (url, log) = scripted(|index, seen| match index {
        0 => (429, vec![("retry-after", "1".into())], error("busy")),
        _ => (200, vec![], created(seen.body.as_ref().unwrap())),
    })
    .await;
    let started = Instant::now();
    let outcome = client(&[url], options()).create_accounts(&[account(1)]).await.unwrap();
    assert_eq!(outcome.results[0].status, CreateAccountStatus::Created);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After is honoured");
    let posts = posts(&log);
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0], posts[1], "the retry is the same signed request");
    let types: Vec<Option<String>> = log.lock().unwrap().iter().map(|seen| seen.content_type.clone()).collect();
    assert_eq!(types, vec![Some(String::from("application/octet-stream")); 2], "submissions are binary");

    // A Retry-After longer than the client's bound is cut to the bound.
    let (url, _) = scripted(|index, seen| match index {
        0 => (429, vec![("retry-after", "3600".into())], error("busy")),
        _ => (200, vec![], created(seen.body.as_ref().unwrap())),
    })
    .await;
    let bounded = ClientOptions { retry_after_max: Duration::from_millis(100), ..options() };
    let started = Instant::now();
    client(&[url], bounded).create_accounts(&[account(1)]).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_pending_request_is_asked_about_by_its_id() {
    // The validator remembers the request it took in, to answer its outcome later.
    let shared: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(None));
    let first_request = shared.clone();
    let (url, log) = scripted(move |index, seen| match index {
        0 => {
            *first_request.lock().unwrap() = seen.body.clone();
            (202, vec![], json!({"state": "pending", "retry_after_ms": 10}))
        }
        1 | 2 => (404, vec![], error("request_not_found")),
        _ => (200, vec![], created(first_request.lock().unwrap().as_ref().unwrap())),
    })
    .await;
    let outcome = client(&[url], options()).create_accounts(&[account(1), account(2)]).await.unwrap();
    assert_eq!(outcome.results.len(), 2);
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|seen| seen.method.as_str()).collect::<Vec<_>>(), ["POST", "GET", "GET", "GET"]);
    let request = shared.lock().unwrap().clone().unwrap();
    let expected = format!("/v1/requests/{}/{}", request["client"].as_str().unwrap(), request["id"].as_str().unwrap());
    assert!(seen[1..].iter().all(|seen| seen.path == expected), "{seen:?}");
    assert_eq!(outcome.requests[0].request_id.to_string(), request["id"].as_str().unwrap());
}

#[tokio::test]
async fn a_request_that_stays_unknown_is_sent_again_with_the_same_id() {
    // The validator took the request in (202) and then lost it: asking answers 404 until the
    // client sends it again.
    let (url, log) = scripted(|_, seen| match (seen.method.as_str(), &seen.body) {
        ("POST", Some(body)) if body["id"].is_string() && seen.path == "/v1/requests" => {
            (202, vec![], json!({"state": "pending", "retry_after_ms": 10}))
        }
        _ => (404, vec![], error("request_not_found")),
    })
    .await;
    let resending = ClientOptions {
        resubmit_interval: Duration::from_millis(200),
        submit_wait: Duration::from_millis(1_500),
        ..options()
    };
    let error = client(&[url], resending).create_accounts(&[account(1)]).await.unwrap_err();
    assert!(matches!(error, ClientError::NotFinal { .. }), "{error}");
    let posts = posts(&log);
    assert!(posts.len() >= 3, "sent again every resubmit interval: {}", posts.len());
    assert!(posts.windows(2).all(|pair| pair[0] == pair[1]), "always the same signed request");
}

#[tokio::test]
async fn a_refusal_midway_through_a_split_batch_keeps_the_final_part() {
    let (url, _) = scripted(|index, seen| match index {
        0 => (200, vec![], created(seen.body.as_ref().unwrap())),
        _ => (403, vec![], error("unknown_client")),
    })
    .await;
    let small = ClientOptions { request_events_max: 2, ..options() };
    let error = client(&[url], small).create_accounts(&[account(1), account(2), account(3)]).await.unwrap_err();
    match error {
        ClientError::BatchIncomplete { events_final, requests, results, source } => {
            assert_eq!(events_final, 2);
            assert_eq!(requests.len(), 1);
            assert_eq!(requests[0].events, 0..2);
            let EventResults::Accounts(results) = results else { panic!("account results") };
            assert_eq!(results.len(), 2);
            assert_eq!(source.code(), "unknown_client");
        }
        other => panic!("expected batch_incomplete, got {other}"),
    }
}

#[tokio::test]
async fn a_validator_without_the_outcome_sends_the_client_to_another() {
    // It joined from a snapshot above the request's height.
    let (joined, joined_log) = scripted(|_, _| (404, vec![], error("outcome_not_held"))).await;
    let (holder, _) = scripted(|_, seen| (200, vec![], created(seen.body.as_ref().unwrap()))).await;
    let outcome = client(&[joined, holder], options()).create_accounts(&[account(1)]).await.unwrap();
    assert_eq!(outcome.results.len(), 1);
    assert_eq!(joined_log.lock().unwrap().len(), 1, "asked once, then the next validator");

    // When no validator holds it (a request older than the backup the chain was re-founded
    // from), that is the answer, at once: asked of each validator once, not until time is up.
    let (first, first_log) = scripted(|_, _| (404, vec![], error("outcome_not_held"))).await;
    let (second, second_log) = scripted(|_, _| (404, vec![], error("outcome_not_held"))).await;
    let started = std::time::Instant::now();
    let error = client(&[first, second], options()).create_accounts(&[account(1)]).await.unwrap_err();
    assert_eq!(error.code(), "outcome_not_held", "{error}");
    assert_eq!((first_log.lock().unwrap().len(), second_log.lock().unwrap().len()), (1, 1));
    assert!(started.elapsed() < options().submit_wait, "it did not wait its time out");
}

#[tokio::test]
async fn server_errors_fail_over_and_answers_that_do_not_match_are_refused() {
    let (broken, broken_log) = scripted(|_, _| (500, vec![], json!("internal"))).await;
    let (healthy, _) = scripted(|_, seen| (200, vec![], created(seen.body.as_ref().unwrap()))).await;
    let client_of_both = client(&[broken, healthy], options());
    client_of_both.create_accounts(&[account(1)]).await.unwrap();
    assert_eq!(broken_log.lock().unwrap().len(), 1);

    // An outcome for another request id.
    let (liar, _) = scripted(|_, seen| {
        let mut answer = created(seen.body.as_ref().unwrap());
        answer["request_id"] = json!("12345");
        (200, vec![], answer)
    })
    .await;
    let error = client(&[liar], options()).create_accounts(&[account(1)]).await.unwrap_err();
    assert_eq!(error.code(), "invalid_answer", "{error}");

    // A status this version does not know.
    let (newer, _) = scripted(|_, seen| {
        let mut answer = created(seen.body.as_ref().unwrap());
        answer["results"][0]["status"] = json!("created_in_the_future");
        (200, vec![], answer)
    })
    .await;
    let error = client(&[newer], options()).create_accounts(&[account(1)]).await.unwrap_err();
    assert_eq!(error.code(), "invalid_answer", "{error}");
    assert!(error.to_string().contains("created_in_the_future"), "{error}");

    // A lookup answer that is not the API's JSON.
    let (garbage, _) = scripted(|_, _| (200, vec![], json!({"accounts": [{"id": 5}]}))).await;
    let error = client(&[garbage], options()).lookup_accounts(&[5]).await.unwrap_err();
    assert_eq!(error.code(), "invalid_answer", "{error}");
}

/// A URL where nothing listens: a port bound and released at once.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A server that takes connections and does `serve` with each: what is at a wrong URL.
async fn raw(serve: fn(tokio::net::TcpStream) -> tokio::task::JoinHandle<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            serve(stream);
        }
    });
    url
}

#[tokio::test]
async fn unreachable_urls_fail_reads_and_writes_alike_at_once_naming_the_url_and_cause() {
    // The default bounds: a read may take 10 s and a write 60 s when validators answer "busy";
    // none is needed to learn that nothing answers at all.
    let defaults = ClientOptions::default();
    // Closes each connection without a word, as a peer-to-peer port does with HTTP.
    let mute = raw(|stream| tokio::spawn(async move { drop(stream) })).await;
    // Holds each connection open and never answers.
    let silent = raw(|stream| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(stream);
        })
    })
    .await;
    let dead = dead_url();
    let quick_timeout = ClientOptions { http_timeout: Duration::from_millis(300), ..defaults.clone() };
    for (url, options, cause) in [
        (&dead, &defaults, "is down: connection refused".to_string()),
        (&mute, &defaults, "gave no HTTP answer".to_string()),
        (&silent, &quick_timeout, "gave no answer within 300ms".to_string()),
    ] {
        let client = client(std::slice::from_ref(url), options.clone());
        let started = Instant::now();
        let read = client.lookup_account(1).await.unwrap_err();
        let write = client.create_accounts(&[account(1)]).await.unwrap_err();
        let elapsed = started.elapsed();
        for error in [&read, &write] {
            assert_eq!(error.code(), "unavailable", "{error}");
            assert!(error.to_string().contains(&format!("validator {url} {cause}")), "{error}");
            // Every validator tried `unreachable_rounds` times, no more.
            assert!(matches!(error, ClientError::Unavailable { attempts: 2, .. }), "{error}");
        }
        assert!(elapsed < Duration::from_secs(3), "{url}: {elapsed:?}");
    }

    // Several validators: each one's failure is named, in the order given.
    let client = client(&[dead.clone(), mute.clone()], defaults.clone());
    let error = client.lookup_account(1).await.unwrap_err();
    let text = error.to_string();
    let (first, second) = (text.find(&dead).expect("the dead URL"), text.find(&mute).expect("the mute URL"));
    assert!(first < second, "{text}");
    assert!(matches!(error, ClientError::Unavailable { attempts: 4, .. }), "{error}");
}

#[tokio::test]
async fn a_busy_validator_is_waited_for_but_an_unreachable_one_is_not() {
    // One validator busy, one dead: the busy one answers, so the call keeps going until its wait
    // is over (and would succeed if the busy one became free).
    let (busy, _) = scripted(|_, _| (429, vec![], error("busy"))).await;
    let waits = ClientOptions { read_wait: Duration::from_millis(800), ..options() };
    let started = Instant::now();
    let error = client(&[dead_url(), busy.clone()], waits).lookup_account(1).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(800), "{error}");
    assert!(error.to_string().contains(&format!("validator {busy} answered 429 busy")), "{error}");
}

#[tokio::test]
async fn what_answers_but_is_not_tally_is_named() {
    let html = raw(|mut stream| {
        tokio::spawn(async move {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let page = "<html>nothing here</html>";
            let head = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                page.len()
            );
            let _ = stream.write_all(format!("{head}{page}").as_bytes()).await;
        })
    })
    .await;
    let client = client(std::slice::from_ref(&html), options());
    let started = Instant::now();
    for error in [client.lookup_account(1).await.unwrap_err(), client.create_accounts(&[account(1)]).await.unwrap_err()]
    {
        assert_eq!(error.code(), "not_tally", "{error}");
        assert_eq!(
            error.to_string(),
            format!(
                "{html} does not answer as a Tally validator: it answered 404 Not Found without the API's error form"
            )
        );
    }
    assert!(started.elapsed() < Duration::from_secs(1), "a final answer is not retried");
}
