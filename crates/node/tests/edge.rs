//! The API's edge under hostile or heavy callers: slow and stalled bodies, idle sockets,
//! saturated writes, callers holding bodies or connections they do not finish, callers that do
//! not read their answers, bad encodings in the URL, duplicate JSON keys, and the bearer
//! scheme's case. Tests that load
//! a validator start one of their own, so that they do not disturb each other.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use support::*;
use tally_ledger::AccountFlags;
use tally_node::constants::{
    ANSWER_WRITE_TIMEOUT_MS, BODIES_IN_FLIGHT_MAX, BODY_BYTES_IN_FLIGHT_MAX, BODY_BYTES_PER_ADDRESS_MAX,
    BODY_READ_GAP_MAX_MS, BODY_SIZE_MAX, CONNECTIONS_MAX, CONNECTIONS_PER_ADDRESS_MAX, WRITES_IN_FLIGHT_MAX,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How soon a caller must be answered for the answer to count as prompt.
const PROMPT: Duration = Duration::from_secs(2);

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn address_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to `server` from the loopback address `from`.
async fn connect_from(from: IpAddr, server: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// An HTTP client whose connections come from `from`.
fn http_from(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder().local_address(from).timeout(Duration::from_secs(60)).build().unwrap()
}

/// Sends `POST path` declaring a 1,000-byte body, then one byte a second, and returns what the
/// server answered (up to `limit` of waiting) and how long it took.
async fn trickle(server: SocketAddr, path: &'static str, limit: Duration) -> (String, Duration) {
    let stream = TcpStream::connect(server).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {server}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let dripping = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    let _ = tokio::time::timeout(limit, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => reply.extend_from_slice(&buffer[..read]),
            }
            if String::from_utf8_lossy(&reply).contains("}}") {
                return;
            }
        }
    })
    .await;
    dripping.abort();
    (String::from_utf8_lossy(&reply).into_owned(), started.elapsed())
}

/// Callers trickling bodies hold no parsing turn: more of them than there are turns leave other
/// callers' requests answered at once, and each of them gets 408 `body_timeout` within about
/// the grace, not the full body deadline.
#[tokio::test]
async fn slow_bodies_do_not_lock_out_other_callers() {
    within(async {
        let lone = start_lone("slow-bodies", Duration::from_millis(500), 16);
        let server = address_of(&lone.url);
        let tricklers: Vec<_> = (0..BODIES_IN_FLIGHT_MAX + 4)
            .map(|index| {
                let path = if index % 2 == 0 { "/v1/accounts/lookup" } else { "/v1/requests" };
                tokio::spawn(trickle(server, path, Duration::from_secs(20)))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // While they trickle, a read and a write with whole bodies are answered at once.
        let started = Instant::now();
        let (status, body) = post(&lone.url, "/v1/accounts/lookup", &json!({ "ids": ["1"] })).await;
        assert_eq!((status, &body), (StatusCode::OK, &json!({ "accounts": [] })));
        let request = create_accounts(lone.chain_id, 1, &lone.client, &[account(1, AccountFlags::NONE)]);
        let (status, body) = post(&lone.url, "/v1/requests", &request).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert!(started.elapsed() < PROMPT, "answered after {:?}", started.elapsed());

        for trickler in tricklers {
            let (reply, elapsed) = trickler.await.unwrap();
            assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
            assert!(reply.contains("\"body_timeout\""), "{reply}");
            assert!(elapsed < Duration::from_secs(5), "cut off after {elapsed:?}");
        }
    })
    .await;
}

/// Whether the server has closed `stream` (a read of 0 bytes or a reset), waiting `patience`.
async fn closed(stream: &mut TcpStream, patience: Duration) -> bool {
    let mut buffer = [0u8; 16];
    matches!(tokio::time::timeout(patience, stream.read(&mut buffer)).await, Ok(Ok(0) | Err(_)))
}

/// More idle sockets than the connection cap, from several addresses, do not keep a new caller
/// waiting: idle connections are closed to make room.
#[tokio::test]
async fn idle_sockets_beyond_the_cap_do_not_delay_a_new_caller() {
    within(async {
        let lone = start_lone("idle-sockets", Duration::from_millis(500), 16);
        let server = address_of(&lone.url);
        let addresses = 6u8;
        let per_address = (CONNECTIONS_MAX + 50).div_ceil(addresses as usize);
        assert!(per_address <= CONNECTIONS_PER_ADDRESS_MAX, "the total cap is what this test loads");
        let mut idle = Vec::new();
        for round in 0..per_address {
            for address in 0..addresses {
                idle.push(connect_from(loopback(10 + address), server).await);
            }
            if round % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
        assert!(idle.len() > CONNECTIONS_MAX);
        let started = Instant::now();
        let (status, body) = get(&lone.url, "/healthz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = get(&lone.url, "/v1/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(started.elapsed() < PROMPT, "answered after {:?}", started.elapsed());
        // The oldest idle sockets were closed for the newer ones.
        assert!(closed(&mut idle[0], Duration::from_secs(1)).await);
    })
    .await;
}

/// One address cannot hold more than its share of connections: its idle ones beyond the cap
/// are closed, and other callers are served at once.
#[tokio::test]
async fn one_address_cannot_take_every_slot() {
    within(async {
        let lone = start_lone("one-address", Duration::from_millis(500), 16);
        let server = address_of(&lone.url);
        let mut sockets = Vec::new();
        for _ in 0..CONNECTIONS_PER_ADDRESS_MAX + 40 {
            sockets.push(connect_from(loopback(20), server).await);
        }
        // A request on a connection of its own makes sure the server has taken in all of them.
        let (status, _) = get(&lone.url, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        let mut open = 0;
        for socket in &mut sockets {
            if !closed(socket, Duration::from_millis(50)).await {
                open += 1;
            }
        }
        assert!(open <= CONNECTIONS_PER_ADDRESS_MAX, "{open} connections from one address are open");
        assert!(open >= CONNECTIONS_PER_ADDRESS_MAX / 2, "only {open} connections from one address are open");
        // The newest are the ones kept.
        assert!(!closed(sockets.last_mut().unwrap(), Duration::from_millis(50)).await);
        let started = Instant::now();
        let (status, _) = get(&lone.url, "/v1/status").await;
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < PROMPT, "answered after {:?}", started.elapsed());
    })
    .await;
}

/// With every write slot waiting for a finality that never comes and more callers trickling
/// write bodies, `/healthz`, `/metrics` and reads still answer 200 at once, and one more
/// write answers 429 `busy` at once.
#[tokio::test]
async fn reads_keep_answering_while_writes_are_saturated() {
    within(async {
        let lone = start_lone("saturated", Duration::from_secs(30), 1_024);
        let server = address_of(&lone.url);
        // Writes from several addresses, so that the per-address cap is not what stops them.
        let writers = WRITES_IN_FLIGHT_MAX.div_ceil(CONNECTIONS_PER_ADDRESS_MAX / 2);
        let mut waiting = Vec::new();
        for index in 0..WRITES_IN_FLIGHT_MAX {
            let client = http_from(loopback(30 + (index % writers) as u8));
            let id = 100 + index as u128;
            let request = create_accounts(lone.chain_id, id, &lone.client, &[account(id, AccountFlags::NONE)]);
            let url = format!("{}/v1/requests", lone.url);
            waiting.push(tokio::spawn(async move { client.post(url).json(&request).send().await.map(|r| r.status()) }));
        }
        let tricklers: Vec<_> = (0..BODIES_IN_FLIGHT_MAX)
            .map(|_| tokio::spawn(trickle(server, "/v1/accounts/lookup", Duration::from_secs(20))))
            .collect();
        // Every write slot is taken once every request is in the mempool.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, status) = get(&lone.url, "/v1/status").await;
            if status["mempool_requests"].as_u64().unwrap() >= WRITES_IN_FLIGHT_MAX as u64 {
                break;
            }
            assert!(Instant::now() < deadline, "the writes never all arrived: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let started = Instant::now();
        let one_more = create_accounts(lone.chain_id, 99, &lone.client, &[account(99, AccountFlags::NONE)]);
        let (status, body) = post(&lone.url, "/v1/requests", &one_more).await;
        assert_eq!((status, error_code(&body)), (StatusCode::TOO_MANY_REQUESTS, "busy"), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("writes"), "{body}");
        for path in ["/healthz", "/metrics", "/v1/status", "/v1/blocks"] {
            let response = http().get(format!("{}{path}", lone.url)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
        let (status, body) = post(&lone.url, "/v1/accounts/lookup", &json!({ "ids": ["100"] })).await;
        assert_eq!((status, &body), (StatusCode::OK, &json!({ "accounts": [] })));
        let (status, body) = get(&lone.url, "/v1/accounts/100").await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "account_not_found"));
        assert!(started.elapsed() < PROMPT, "answered after {:?}", started.elapsed());

        for trickler in tricklers {
            let (reply, _) = trickler.await.unwrap();
            assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        }
        for write in waiting {
            write.abort();
        }
    })
    .await;
}

#[tokio::test]
async fn a_bad_percent_encoding_in_the_path_is_a_json_error() {
    within(async {
        let url = &cluster().urls[0];
        for path in ["/v1/accounts/%ZZ", "/v1/accounts/%FF", "/v1/transfers/1%2", "/v1/nothing/%C3", "/healthz%"] {
            let (status, body) = get(url, path).await;
            assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_path"), "{path}: {body}");
            assert_eq!(body["error"]["field"], "path", "{path}");
        }
        // A good encoding is decoded: %31 is 1, a well-formed id that names no account.
        let (status, body) = get(url, "/v1/accounts/98765%34321").await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "account_not_found"), "{body}");
    })
    .await;
}

#[tokio::test]
async fn query_values_are_percent_decoded() {
    within(async {
        let url = &cluster().urls[0];
        let (status, body) = get(url, "/v1/blocks?limit=%31").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["blocks"].as_array().unwrap().len() <= 1, "{body}");
        let (status, body) = get(url, "/v1/transfers/recent?%6Cimit=%32").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["transfers"].as_array().unwrap().len() <= 2, "{body}");
        for query in ["limit=%ZZ", "limit=%F", "limit=%FF", "limit=%+1"] {
            let (status, body) = get(url, &format!("/v1/blocks?{query}")).await;
            assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_path"), "{query}: {body}");
            assert_eq!(body["error"]["field"], "limit", "{query}");
        }
        // A parameter name that does not decode cannot be named: `field` is `query`, as
        // docs/API.md says.
        let (status, body) = get(url, "/v1/blocks?li%ZZmit=1").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_path"), "{body}");
        assert_eq!(body["error"]["field"], "query");
        let (status, body) = get(url, "/v1/blocks?limit=%30").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_number"), "{body}");
    })
    .await;
}

#[tokio::test]
async fn a_duplicated_json_key_is_refused_with_its_path() {
    within(async {
        let cluster = cluster();
        let url = &cluster.urls[0];
        let (status, body) = post_raw(url, "/v1/accounts/lookup", r#"{"ids": ["1"], "ids": ["2"]}"#).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "duplicate_field"), "{body}");
        assert_eq!(body["error"]["field"], "ids");
        // Deep in a signed request: the signature would cover one of the two amounts only.
        let request = create_transfers(cluster.chain_id, 7_000, &cluster.client, &[transfer(7_001, 1, 2, 3)]);
        let text = serde_json::to_string(&request).unwrap().replacen(
            "\"amount\":\"3\"",
            "\"amount\":\"3\",\"amount\":\"4\"",
            1,
        );
        assert!(text.contains("\"amount\":\"4\""), "{text}");
        let (status, body) = post_raw(url, "/v1/requests", text).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "duplicate_field"), "{body}");
        assert_eq!(body["error"]["field"], "events[0].amount");
    })
    .await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    within(async {
        let cluster = cluster();
        let body = json!({ "accounts": [{ "id": "7101", "ledger": 7, "code": 10 }], "request_id": "7100" });
        let response = http()
            .post(format!("{}/v1/accounts", cluster.urls[2]))
            .header("authorization", format!("bearer {}", cluster.gateway_token))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(statuses(&body), ["created"]);
    })
    .await;
}

/// Opens a connection from `from` that POSTs to `path` a body declared as `BODY_SIZE_MAX` bytes
/// and sends 2 KiB every 50 ms (40 KiB a second, above the minimum rate) until the server stops
/// reading or the task is aborted.
async fn stream_body(server: SocketAddr, from: IpAddr, path: &'static str) {
    let mut stream = connect_from(from, server).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {server}\r\ncontent-type: application/json\r\ncontent-length: {BODY_SIZE_MAX}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![b' '; 2 * 1024];
    loop {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// More callers than there are write slots, each sending a write's body and never finishing it,
/// hold no write slot: a valid write is still taken. (A slot is taken only by a request that
/// has been read and whose signature or bearer token checks.)
#[tokio::test]
async fn callers_with_no_valid_request_hold_no_write_slot() {
    within(async {
        let lone = start_lone("no-write-slot", Duration::from_millis(500), 16);
        let server = address_of(&lone.url);
        let addresses = 4;
        let senders = WRITES_IN_FLIGHT_MAX + 8;
        assert!(senders.div_ceil(addresses) <= CONNECTIONS_PER_ADDRESS_MAX);
        let streaming: Vec<_> = (0..senders)
            .map(|index| tokio::spawn(stream_body(server, loopback(40 + (index % addresses) as u8), "/v1/requests")))
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;

        let request = create_accounts(lone.chain_id, 1, &lone.client, &[account(1, AccountFlags::NONE)]);
        let (status, body) = post(&lone.url, "/v1/requests", &request).await;
        assert_eq!(status, StatusCode::ACCEPTED, "a valid write found no slot: {body}");
        for sender in &streaming {
            assert!(!sender.is_finished(), "a sender was cut off");
        }
        for sender in streaming {
            sender.abort();
        }
    })
    .await;
}

/// A body that sent a lot at once and then stalls earns no time by it: a stall longer than the
/// gap ends the request with 408 `body_timeout` within seconds, not at the body's deadline.
#[tokio::test]
async fn a_stalled_body_is_cut_off_whatever_it_sent_before() {
    within(async {
        let server = address_of(&lone().url);
        let mut stream = TcpStream::connect(server).await.unwrap();
        let head = format!(
            "POST /v1/accounts/lookup HTTP/1.1\r\nhost: {server}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            4 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&vec![b' '; 2 * 1024 * 1024]).await.unwrap();
        let started = Instant::now();
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut reply)).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 408"), "after {:?}: {reply}", started.elapsed());
        assert!(reply.contains("\"body_timeout\"") && reply.contains("stalled"), "{reply}");
        let bound = Duration::from_millis(BODY_READ_GAP_MAX_MS) + Duration::from_secs(5);
        assert!(started.elapsed() < bound, "cut off after {:?}", started.elapsed());
    })
    .await;
}

/// One address sending large bodies and then holding them cannot take the validator's whole
/// body budget: past its share its requests answer 429, and another address's body is read.
#[tokio::test]
async fn one_address_cannot_hold_the_whole_body_budget() {
    within(async {
        let lone = start_lone("body-budget", Duration::from_millis(500), 16);
        let server = address_of(&lone.url);
        let held = std::sync::Arc::new(vec![b' '; BODY_SIZE_MAX - BODY_SIZE_MAX / 16]);
        // Enough bodies from one address to fill the validator's budget if nothing stopped it.
        let holders = BODY_BYTES_IN_FLIGHT_MAX / held.len();
        assert!(holders * held.len() > BODY_BYTES_IN_FLIGHT_MAX - 1024 * 1024);
        assert!(holders <= CONNECTIONS_PER_ADDRESS_MAX && held.len() < BODY_BYTES_PER_ADDRESS_MAX);
        let (sent, mut all_sent) = tokio::sync::mpsc::channel(holders);
        let holding: Vec<_> = (0..holders)
            .map(|_| {
                let (held, sent) = (held.clone(), sent.clone());
                tokio::spawn(async move {
                    let mut stream = connect_from(loopback(60), server).await;
                    let head = format!(
                        "POST /v1/accounts/lookup HTTP/1.1\r\nhost: {server}\r\ncontent-type: application/json\r\n\
                         content-length: {BODY_SIZE_MAX}\r\n\r\n"
                    );
                    let written = async {
                        stream.write_all(head.as_bytes()).await?;
                        stream.write_all(&held).await
                    };
                    let failed = written.await.is_err();
                    let _ = sent.send(()).await;
                    if failed {
                        return;
                    }
                    // Then a byte now and then: the body never stalls, and never ends.
                    while stream.write_all(b" ").await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                })
            })
            .collect();
        drop(sent);
        for _ in 0..holders {
            tokio::time::timeout(Duration::from_secs(30), all_sent.recv()).await.expect("the bodies were sent");
        }
        // Let the server read what is still in the sockets.
        tokio::time::sleep(Duration::from_secs(2)).await;

        let mut body = br#"{"ids": ["1"]}"#.to_vec();
        body.resize(1024 * 1024, b' ');
        let response = http_from(loopback(61))
            .post(format!("{}/v1/accounts/lookup", lone.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, body) = answer(response).await;
        assert_eq!((status, &body), (StatusCode::OK, &json!({ "accounts": [] })));
        for holder in holding {
            holder.abort();
        }
    })
    .await;
}

/// A caller that pipelines requests and never reads the answers fills its socket; once nothing
/// could be written for `ANSWER_WRITE_TIMEOUT_MS`, the connection is dropped, instead of holding
/// its slot (and a request in progress) forever.
#[tokio::test]
async fn a_caller_that_does_not_read_its_answers_loses_its_connection() {
    within(async {
        let server = address_of(&lone().url);
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4 * 1024).unwrap();
        let (mut reader, mut writer) = socket.connect(server).await.unwrap().into_split();
        let requests = 400;
        let writing = tokio::spawn(async move {
            let request = format!("GET /dashboard.js HTTP/1.1\r\nhost: {server}\r\n\r\n");
            for _ in 0..requests {
                if writer.write_all(request.as_bytes()).await.is_err() {
                    return;
                }
            }
            // Keep the writing half open: the caller is still there, it just does not read.
            std::future::pending::<()>().await;
        });
        tokio::time::sleep(Duration::from_millis(ANSWER_WRITE_TIMEOUT_MS) + Duration::from_secs(3)).await;

        let mut reply = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => reply.extend_from_slice(&buffer[..read]),
                }
            }
        })
        .await
        .is_ok();
        writing.abort();
        let answers = reply.windows(12).filter(|window| window == b"HTTP/1.1 200").count();
        assert!(ended, "the connection is still open after {answers} answers");
        assert!(answers < requests, "all {answers} answers were sent");
        // The validator still answers others.
        let (status, _) = get(&lone().url, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

/// A connection from an address whose every connection is answering a request is refused with
/// a 429 `busy` in the API's form (with `Retry-After`), not just closed; other addresses are
/// served.
#[tokio::test]
async fn a_caller_over_its_address_cap_is_answered_busy() {
    within(async {
        let lone = start_lone("address-cap", Duration::from_secs(30), 1_024);
        let server = address_of(&lone.url);
        let client = http_from(loopback(70));
        let mut waiting = Vec::new();
        for index in 0..CONNECTIONS_PER_ADDRESS_MAX {
            let id = 200 + index as u128;
            let request = create_accounts(lone.chain_id, id, &lone.client, &[account(id, AccountFlags::NONE)]);
            let (client, url) = (client.clone(), format!("{}/v1/requests", lone.url));
            waiting.push(tokio::spawn(async move { client.post(url).json(&request).send().await.map(|r| r.status()) }));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, status) = get(&lone.url, "/v1/status").await;
            if status["mempool_requests"].as_u64().unwrap() >= CONNECTIONS_PER_ADDRESS_MAX as u64 {
                break;
            }
            assert!(Instant::now() < deadline, "the writes never all arrived: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let response = http_from(loopback(70)).get(format!("{}/healthz", lone.url)).send().await.unwrap();
        assert_eq!(response.headers()["retry-after"], "1");
        let (status, body) = answer(response).await;
        assert_eq!((status, error_code(&body)), (StatusCode::TOO_MANY_REQUESTS, "busy"), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("connections"), "{body}");
        // Over raw TCP, the whole answer arrives and then the connection closes.
        let mut stream = connect_from(loopback(70), server).await;
        stream.write_all(format!("GET /healthz HTTP/1.1\r\nhost: {server}\r\n\r\n").as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await.unwrap().unwrap();
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 429"), "{reply}");
        assert!(reply.contains("connection: close") && reply.ends_with("}}"), "{reply}");
        // Another address is served.
        let (status, _) = get(&lone.url, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        for write in waiting {
            write.abort();
        }
    })
    .await;
}
