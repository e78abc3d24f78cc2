//! A real cluster through `tally-node`: four validators on loopback with authenticated TCP and
//! files on disk, driven over HTTP with requests signed here. Every test shares the cluster
//! (started once per test binary) and uses its own ids. A fifth, lone validator of another
//! genesis, whose peers never start, shows the answers a stuck chain gives: 202 and 429.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use support::*;
use tally_chain::certified::CertifiedHeader;
use tally_chain::keys::public_key;
use tally_chain::receipt::OutcomeReceipt;
use tally_chain::{Request, RequestKind};
use tally_ledger::AccountFlags;
use tally_node::api::signed::request_to_json;
use tally_node::cluster::{self, Layout};
use tally_node::{NodeConfig, hex, key_file};

#[tokio::test]
async fn every_validator_is_healthy_and_reports_its_status() {
    within(async {
        let cluster = cluster();
        for (index, url) in cluster.urls.iter().enumerate() {
            let (status, body) = get(url, "/healthz").await;
            assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
            let (status, body) = get(url, "/v1/status").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["chain_id"], "1");
            let validators = body["validators"].as_array().unwrap();
            assert_eq!(validators.len(), 4);
            assert_eq!(validators[index]["self"], true);
            assert_eq!(validators[index]["key"], body["validator"]);
            assert_eq!(validators[index]["api"].as_str().unwrap(), url.as_str());
            for field in ["height", "finalized_block", "state_digest", "view", "leader"] {
                assert!(body[field].is_string(), "{field} in {body}");
            }
            for field in [
                "mempool_requests",
                "requests_finalized",
                "events_finalized",
                "blocks_refused",
                "evidence",
                "records_repairing",
            ] {
                assert!(body[field].is_u64(), "{field} in {body}");
            }
            assert_eq!(body["records_repairing"], 0, "nothing is damaged");
            assert_eq!((&body["faults_tolerated"], &body["quorum"]), (&json!(1), &json!(3)), "4 = 3f + 1 with f = 1");
        }
    })
    .await;
}

#[tokio::test]
async fn accounts_and_transfers_signed_here_are_final_and_readable_everywhere() {
    within(async {
        let cluster = cluster();
        let (a, b) = (1_001u128, 1_002u128);
        let accounts = create_accounts(
            cluster.chain_id,
            1_000,
            &cluster.client,
            &[account(a, AccountFlags::HISTORY), account(b, AccountFlags::NONE)],
        );
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &accounts).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(statuses(&body), ["created", "created"]);
        assert_eq!(body["request_id"], "1000");
        assert_eq!(body["client"], hex::encode(public_key(&cluster.client).as_ref()));
        let height: u64 = body["height"].as_str().unwrap().parse().unwrap();
        assert!(height >= 1);

        let transfers = create_transfers(
            cluster.chain_id,
            1_001,
            &cluster.client,
            &[transfer(1_101, a, b, 30), transfer(1_102, a, b, u128::from(u64::MAX) + 5)],
        );
        let (status, body) = post(&cluster.urls[1], "/v1/requests", &transfers).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(statuses(&body), ["created", "created"]);
        let transfers_height: u64 = body["height"].as_str().unwrap().parse().unwrap();

        // Every validator answers reads from its own finalized state once it has the block.
        for url in &cluster.urls {
            let mut seen = false;
            for _ in 0..200 {
                let (status, body) = get(url, "/v1/status").await;
                assert_eq!(status, StatusCode::OK);
                if body["height"].as_str().unwrap().parse::<u64>().unwrap() >= transfers_height {
                    seen = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(seen, "{url} never reached height {transfers_height}");
            let (status, body) =
                post(url, "/v1/accounts/lookup", &json!({ "ids": [a.to_string(), b.to_string(), "999999"] })).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let found = body["accounts"].as_array().unwrap();
            assert_eq!(found.len(), 2);
            let expected = (u128::from(u64::MAX) + 35).to_string();
            assert_eq!(found[0]["debits_posted"], expected.as_str());
            assert_eq!(found[1]["credits_posted"], expected.as_str());
            assert_eq!(found[0]["flags"], json!(["history"]));
        }

        let url = &cluster.urls[2];
        let (status, body) = get(url, &format!("/v1/accounts/{b}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], b.to_string());
        let (status, body) = get(url, "/v1/transfers/1101").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["amount"].as_str(), body["debit_account_id"].as_str()), (Some("30"), Some("1001")));
        let (status, body) = post(url, "/v1/transfers/lookup", &json!({ "ids": ["1102", "1101"] })).await;
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<&str> = body["transfers"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1102", "1101"]);

        let filter = json!({ "account_id": a.to_string(), "limit": 10, "flags": ["debits", "credits", "reversed"] });
        let (status, body) = post(url, "/v1/accounts/transfers", &filter).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let ids: Vec<&str> = body["transfers"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1102", "1101"]);
        let (status, body) = post(url, "/v1/accounts/balances", &filter).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let balances = body["balances"].as_array().unwrap();
        assert_eq!(balances.len(), 2);
        assert_eq!(balances[1]["debits_posted"], "30");

        let (status, body) = post(url, "/v1/accounts/query", &json!({ "ledger": 7, "code": 10, "limit": 100 })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["accounts"].as_array().unwrap().iter().any(|account| account["id"] == "1001"));
        let (status, body) =
            post(url, "/v1/transfers/query", &json!({ "user_data_64": "99", "limit": 100, "flags": ["reversed"] }))
                .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["transfers"].as_array().unwrap().iter().any(|transfer| transfer["id"] == "1102"));

        let (status, body) = get(url, "/v1/transfers/recent?limit=100").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["transfers"].as_array().unwrap().iter().any(|transfer| transfer["id"] == "1101"));

        let (status, body) = get(url, "/v1/blocks?limit=5").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let blocks = body["blocks"].as_array().unwrap();
        assert!(!blocks.is_empty() && blocks.len() <= 5);
        let heights: Vec<u64> = blocks.iter().map(|block| block["height"].as_str().unwrap().parse().unwrap()).collect();
        assert!(heights.windows(2).all(|pair| pair[0] == pair[1] + 1), "newest first: {heights:?}");
        for field in [
            "digest",
            "epoch",
            "view",
            "leader",
            "parent_view",
            "parent",
            "timestamp",
            "requests_root",
            "state_digest",
            "parent_state_digest",
            "parent_results_root",
        ] {
            assert!(blocks[0][field].is_string(), "{field} in {}", blocks[0]);
        }
        assert!(blocks[0]["requests"].is_u64() && blocks[0]["events"].is_u64());

        // The outcome of a finalized request, by name, from any validator.
        let client = hex::encode(public_key(&cluster.client).as_ref());
        let (status, body) = get(&cluster.urls[3], &format!("/v1/requests/{client}/1001")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["height"].as_str().unwrap().parse::<u64>().unwrap(), transfers_height);
        assert_eq!(statuses(&body), ["created", "created"]);
    })
    .await;
}

#[tokio::test]
async fn a_finalized_header_comes_with_a_certificate_any_client_can_check() {
    within(async {
        let cluster = cluster();
        let accounts = create_accounts(cluster.chain_id, 1_500, &cluster.client, &[account(1_500, AccountFlags::NONE)]);
        let (status, body) = post(&cluster.urls[1], "/v1/requests", &accounts).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let height: u64 = body["height"].as_str().unwrap().parse().unwrap();
        for url in &cluster.urls {
            // A validator may not have finalized the height yet (it answers 404 until it has).
            let mut tries = 0;
            let (status, body) = loop {
                let (status, body) = get(url, &format!("/v1/headers/{height}")).await;
                if status != StatusCode::NOT_FOUND || tries == 50 {
                    break (status, body);
                }
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(status, StatusCode::OK, "{url}: {body}");
            assert_eq!(body["height"], height.to_string());
            assert_eq!(body["header"]["height"], height.to_string());
            // Tests share the cluster: other requests may be in the block too.
            assert!(body["header"]["requests"].as_u64().unwrap() >= 1, "{body}");
            let certified: u64 = body["certified_height"].as_str().unwrap().parse().unwrap();
            assert!(certified >= height);
            assert!(body["signers"].as_array().unwrap().len() >= 3, "a quorum of four: {body}");
            // The proof checks out against the genesis alone, and proves the header shown.
            let proof = body["proof"].as_str().unwrap();
            let bytes = hex::decode(proof, proof.len() / 2).unwrap();
            let proof = CertifiedHeader::decode(&bytes, &cluster.genesis).unwrap();
            proof.verify(&cluster.genesis, height).unwrap();
            assert_eq!(hex::encode(proof.header.digest().as_ref()), body["header"]["digest"].as_str().unwrap());
            assert_eq!(u64::from(proof.header.request_count), body["header"]["requests"].as_u64().unwrap());
        }
        let (status, body) = get(&cluster.urls[0], "/v1/headers/0").await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "header_not_held"), "{body}");
        let (status, body) = get(&cluster.urls[0], &format!("/v1/headers/{}", u64::MAX)).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "header_not_held"), "{body}");
        for bad in ["x", "01", "-1", "18446744073709551616"] {
            let (status, body) = get(&cluster.urls[0], &format!("/v1/headers/{bad}")).await;
            assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_number"), "{bad}: {body}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_requests_receipt_proves_its_outcome_against_the_genesis_alone() {
    within(async {
        let cluster = cluster();
        let request = Request::create_accounts(
            cluster.chain_id,
            1_600,
            tally_chain::default_expiry(),
            &cluster.client,
            &[account(1_600, AccountFlags::NONE), account(1_601, AccountFlags::NONE)],
        )
        .unwrap();
        let (status, body) = post(&cluster.urls[2], "/v1/requests", &request_to_json(&request)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let height = body["height"].as_str().unwrap().to_string();
        let client = hex::encode(public_key(&cluster.client).as_ref());
        for url in &cluster.urls {
            // A validator may not have finalized the block above yet (202), or the request's
            // block (404), until it has.
            let mut tries = 0;
            let (status, answer) = loop {
                let (status, answer) = get(url, &format!("/v1/requests/{client}/1600/receipt")).await;
                if status == StatusCode::OK || tries == 50 {
                    break (status, answer);
                }
                assert!([StatusCode::ACCEPTED, StatusCode::NOT_FOUND].contains(&status), "{url}: {answer}");
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(status, StatusCode::OK, "{url}: {answer}");
            assert_eq!(answer["height"], height.as_str());
            assert_eq!(statuses(&answer), ["created", "created"]);
            assert!(answer["signers"].as_array().unwrap().len() >= 3, "a quorum of four: {answer}");
            let text = answer["receipt"].as_str().unwrap();
            let bytes = hex::decode(text, text.len() / 2).unwrap();
            let receipt = OutcomeReceipt::decode(&bytes, &cluster.genesis).unwrap();
            let verified = receipt.verify_for(&cluster.genesis, &request).unwrap();
            assert_eq!(verified.height.to_string(), height);
            assert_eq!(verified.signers.len(), answer["signers"].as_array().unwrap().len());
            assert_eq!(receipt.outcome.timestamp_ns.to_string(), answer["timestamp"].as_str().unwrap());
            assert!(bytes.len() < 1_500, "a receipt of one request with two events: {} bytes", bytes.len());
            // It is this request's, and no other's.
            let other = Request::create_accounts(
                cluster.chain_id,
                1_600,
                tally_chain::default_expiry(),
                &cluster.client,
                &[account(1_602, AccountFlags::NONE)],
            )
            .unwrap();
            assert!(receipt.verify_for(&cluster.genesis, &other).is_err());
        }
        let (status, body) = get(&cluster.urls[0], &format!("/v1/requests/{client}/987654321/receipt")).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "request_not_found"), "{body}");
        let (status, body) = get(&cluster.urls[0], "/v1/requests/zz/1/receipt").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_type"), "{body}");
        let (status, body) = get(&cluster.urls[0], &format!("/v1/requests/{client}/x/receipt")).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_number"), "{body}");
    })
    .await;
}

#[tokio::test]
async fn a_replayed_request_answers_its_first_outcome() {
    within(async {
        let cluster = cluster();
        let accounts = create_accounts(cluster.chain_id, 2_000, &cluster.client, &[account(2_001, AccountFlags::NONE)]);
        let (status, first) = post(&cluster.urls[0], "/v1/requests", &accounts).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(statuses(&first), ["created"]);
        // Through another validator, and the same one again: the same answer, applied once.
        for url in [&cluster.urls[3], &cluster.urls[0]] {
            let (status, again) = post(url, "/v1/requests", &accounts).await;
            assert_eq!(status, StatusCode::OK, "{again}");
            assert_eq!(again, first);
        }
        // A new request with the same account is a new request: the ledger says it exists.
        let twice = create_accounts(cluster.chain_id, 2_001, &cluster.client, &[account(2_001, AccountFlags::NONE)]);
        let (status, body) = post(&cluster.urls[1], "/v1/requests", &twice).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(statuses(&body), ["exists"]);
    })
    .await;
}

#[tokio::test]
async fn a_request_id_reused_for_other_events_is_a_conflict() {
    within(async {
        let cluster = cluster();
        let first = create_accounts(cluster.chain_id, 2_100, &cluster.client, &[account(2_101, AccountFlags::NONE)]);
        let (status, recorded) = post(&cluster.urls[0], "/v1/requests", &first).await;
        assert_eq!(status, StatusCode::OK, "{recorded}");
        assert_eq!(statuses(&recorded), ["created"]);
        assert_eq!(recorded["events_digest"].as_str().map(str::len), Some(64), "{recorded}");
        // The same id for other events, through every validator: 409, and nothing applies.
        let other = create_accounts(cluster.chain_id, 2_100, &cluster.client, &[account(2_102, AccountFlags::NONE)]);
        for url in &cluster.urls {
            let (status, body) = post(url, "/v1/requests", &other).await;
            assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "request_id_conflict"), "{body}");
            assert_eq!(body["error"]["field"], "request_id");
        }
        let (status, body) = get(&cluster.urls[2], "/v1/accounts/2102").await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "account_not_found"));
        // An identical retry still answers the recorded outcome.
        let (status, again) = post(&cluster.urls[1], "/v1/requests", &first).await;
        assert_eq!((status, &again), (StatusCode::OK, &recorded));

        // Gateway callers share one key, so their ids can collide: the same answer there.
        let bearer = format!("Bearer {}", cluster.gateway_token);
        let gateway = |body: Value| {
            let bearer = bearer.clone();
            let url = cluster.urls[3].clone();
            async move {
                answer(
                    http()
                        .post(format!("{url}/v1/accounts"))
                        .header("authorization", bearer)
                        .json(&body)
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            }
        };
        let (status, created) =
            gateway(json!({ "accounts": [{ "id": "2201", "ledger": 7, "code": 10 }], "request_id": "2200" })).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let (status, body) =
            gateway(json!({ "accounts": [{ "id": "2202", "ledger": 7, "code": 10 }], "request_id": "2200" })).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "request_id_conflict"), "{body}");
        let (status, again) =
            gateway(json!({ "accounts": [{ "id": "2201", "ledger": 7, "code": 10 }], "request_id": "2200" })).await;
        assert_eq!((status, &again), (StatusCode::OK, &created));
    })
    .await;
}

#[tokio::test]
async fn the_gateway_signs_for_callers_with_the_token_only() {
    within(async {
        let cluster = cluster();
        let url = &cluster.urls[1];
        let body = json!({ "accounts": [{ "id": "3001", "ledger": 7, "code": 10 }], "request_id": "3000" });
        let bearer = format!("Bearer {}", cluster.gateway_token);
        let send = |authorization: Option<String>, body: Value, path: &'static str| async move {
            let mut request = http().post(format!("{url}{path}")).json(&body);
            if let Some(authorization) = authorization {
                request = request.header("authorization", authorization);
            }
            answer(request.send().await.unwrap()).await
        };

        let (status, wrong) = send(Some("Bearer not-the-token-at-all".into()), body.clone(), "/v1/accounts").await;
        assert_eq!((status, error_code(&wrong)), (StatusCode::UNAUTHORIZED, "unauthorized"));
        let (status, missing) = send(None, body.clone(), "/v1/accounts").await;
        assert_eq!((status, error_code(&missing)), (StatusCode::UNAUTHORIZED, "unauthorized"));

        let (status, created) = send(Some(bearer.clone()), body.clone(), "/v1/accounts").await;
        assert_eq!(status, StatusCode::OK, "{created}");
        assert_eq!(statuses(&created), ["created"]);
        assert_eq!(created["request_id"], "3000");
        // The same request id is the same request.
        let (status, again) = send(Some(bearer.clone()), body, "/v1/accounts").await;
        assert_eq!((status, &again), (StatusCode::OK, &created));

        let transfers = json!({ "transfers": [{ "id": "3101", "debit_account_id": "3001",
            "credit_account_id": "2001", "amount": "5", "ledger": 7, "code": 20 }] });
        let (status, body) = send(Some(bearer.clone()), transfers, "/v1/transfers").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(statuses(&body), ["created"]);
        assert!(body["request_id"].as_str().unwrap().parse::<u128>().unwrap() > 0, "an id was chosen: {body}");

        let (status, body) = send(Some(bearer.clone()), json!({ "accounts": [] }), "/v1/accounts").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "empty_batch"));
        let (status, body) = send(Some(bearer), json!({ "accounts": [], "memo": 1 }), "/v1/accounts").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "unknown_field"));
    })
    .await;
}

#[tokio::test]
async fn metrics_name_the_chain_and_the_api() {
    within(async {
        let cluster = cluster();
        // At least one submission through this validator, for the latency histogram.
        let accounts = create_accounts(cluster.chain_id, 4_000, &cluster.client, &[account(4_001, AccountFlags::NONE)]);
        let (status, body) = post(&cluster.urls[2], "/v1/requests", &accounts).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let response = http().get(format!("{}/metrics", cluster.urls[2])).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
        let text = response.text().await.unwrap();
        for name in [
            "tally_finalized_height ",
            "tally_view ",
            "tally_finalization_latency_seconds_count ",
            "tally_mempool_requests ",
            "tally_requests_total{result=\"finalized\"}",
            "tally_connected_peers ",
            "tally_byzantine_evidence ",
            "tally_blocks_refused ",
            "tally_records_repairing 0",
            "tally_halted 0",
            "storage_syncs",
        ] {
            assert!(text.contains(name), "{name} missing from the metrics:\n{text}");
        }
        assert!(text.trim_end().ends_with("# EOF"));
        let value = |name: &str| -> f64 {
            let line = text.lines().find(|line| line.starts_with(name)).unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value("tally_finalized_height ") >= 1.0);
        assert!(value("tally_finalization_latency_seconds_count ") >= 1.0);
        // Peers connect within a few seconds of starting.
        assert!(value("tally_connected_peers ") >= 1.0, "{text}");
    })
    .await;
}

#[tokio::test]
async fn malformed_json_is_refused() {
    within(async {
        let url = &cluster().urls[0];
        for path in ["/v1/requests", "/v1/accounts/lookup", "/v1/accounts/query"] {
            let (status, body) = post_raw(url, path, "{\"kind\": ").await;
            assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "malformed_json"), "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_wrong_type_is_refused() {
    within(async {
        let cluster = cluster();
        let mut request =
            create_accounts(cluster.chain_id, 5_000, &cluster.client, &[account(5_001, AccountFlags::NONE)]);
        request["events"][0]["ledger"] = json!("7");
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_type"));
        assert_eq!(body["error"]["field"], "events[0].ledger");
        let (status, body) = post(&cluster.urls[0], "/v1/accounts/lookup", &json!({ "ids": [1] })).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_type"));
        assert_eq!(body["error"]["field"], "ids[0]");
    })
    .await;
}

#[tokio::test]
async fn a_bad_u128_string_is_refused() {
    within(async {
        let cluster = cluster();
        let mut request = create_transfers(cluster.chain_id, 5_100, &cluster.client, &[transfer(5_101, 1, 2, 3)]);
        request["events"][0]["amount"] = json!("340282366920938463463374607431768211456");
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_number"));
        assert_eq!(body["error"]["field"], "events[0].amount");
        let (status, body) = get(&cluster.urls[0], "/v1/accounts/-5").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_number"));
        let (status, body) = get(&cluster.urls[0], "/v1/blocks?limit=1000").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_number"));
    })
    .await;
}

#[tokio::test]
async fn an_unknown_field_is_refused() {
    within(async {
        let cluster = cluster();
        let mut request =
            create_accounts(cluster.chain_id, 5_200, &cluster.client, &[account(5_201, AccountFlags::NONE)]);
        request["events"][0]["balance"] = json!("5");
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "unknown_field"));
        assert_eq!(body["error"]["field"], "events[0].balance");
        let mut request =
            create_accounts(cluster.chain_id, 5_200, &cluster.client, &[account(5_201, AccountFlags::NONE)]);
        request["nonce"] = json!(1);
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "unknown_field"));
        let (status, body) = post(&cluster.urls[0], "/v1/accounts/query", &json!({ "ledgr": 7 })).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "unknown_field"));
    })
    .await;
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    within(async {
        let url = &cluster().urls[0];
        // A declared length over the limit is refused before the body is read.
        let length = 9 * 1024 * 1024;
        let reply = raw_post(url, "/v1/requests", &format!("content-length: {length}\r\n"), Vec::new()).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
        assert!(reply.contains("body_too_large"), "{reply}");

        // Without a declared length (chunked), the body is cut off at the limit.
        let chunk = vec![b' '; 1024 * 1024];
        let mut chunks: Vec<Vec<u8>> = (0..9)
            .map(|_| [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.clone(), b"\r\n".to_vec()].concat())
            .collect();
        chunks.push(b"0\r\n\r\n".to_vec());
        let reply = raw_post(url, "/v1/requests", "transfer-encoding: chunked\r\n", chunks).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
        assert!(reply.contains("body_too_large"), "{reply}");
    })
    .await;
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    within(async {
        let cluster = cluster();
        let mut request = create_transfers(cluster.chain_id, 5_300, &cluster.client, &[transfer(5_301, 1, 2, 3)]);
        // The signature covers the events: another amount does not verify.
        request["events"][0]["amount"] = json!("4");
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature"));
        // Signed for another chain.
        let other_chain = create_transfers(cluster.chain_id + 1, 5_300, &cluster.client, &[transfer(5_301, 1, 2, 3)]);
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &other_chain).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature"));
        // Signed by another key under this client's name.
        let forger = key_file::generate();
        let mut forged = create_transfers(cluster.chain_id, 5_300, &forger, &[transfer(5_301, 1, 2, 3)]);
        forged["client"] = json!(hex::encode(public_key(&cluster.client).as_ref()));
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &forged).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature"));
    })
    .await;
}

#[tokio::test]
async fn an_unknown_client_is_refused() {
    within(async {
        let cluster = cluster();
        let stranger = key_file::generate();
        let request = create_accounts(cluster.chain_id, 5_400, &stranger, &[account(5_401, AccountFlags::NONE)]);
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "unknown_client"));
    })
    .await;
}

#[tokio::test]
async fn batches_over_the_limit_and_empty_batches_are_refused() {
    within(async {
        let cluster = cluster();
        let mut request =
            create_accounts(cluster.chain_id, 5_500, &cluster.client, &[account(5_501, AccountFlags::NONE)]);
        request["events"] = Value::Array((0..8_191).map(|id| json!({ "id": (id + 1).to_string() })).collect());
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "batch_too_long"));
        let ids: Vec<String> = (1..=8_191).map(|id: u32| id.to_string()).collect();
        let (status, body) = post(&cluster.urls[0], "/v1/transfers/lookup", &json!({ "ids": ids })).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "batch_too_long"));
        request["events"] = json!([]);
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "empty_batch"));
        request["kind"] = json!("create_ledgers");
        let (status, body) = post(&cluster.urls[0], "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "unknown_kind"));
    })
    .await;
}

#[tokio::test]
async fn missing_things_answer_404_and_wrong_methods_405() {
    within(async {
        let cluster = cluster();
        let url = &cluster.urls[0];
        let (status, body) = get(url, "/v1/accounts/987654321").await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "account_not_found"));
        let (status, body) = get(url, "/v1/transfers/987654321").await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "transfer_not_found"));
        let client = hex::encode(public_key(&cluster.client).as_ref());
        let (status, body) = get(url, &format!("/v1/requests/{client}/987654321")).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "request_not_found"));
        let (status, body) = get(url, "/v1/nothing").await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "route_not_found"));
        let (status, body) = get(url, "/v1/requests").await;
        assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
        let (status, body) = get(url, "/v1/requests/zz/1").await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "invalid_type"));
    })
    .await;
}

#[tokio::test]
async fn the_dashboard_is_served() {
    within(async {
        let url = &cluster().urls[0];
        for (path, kind) in [
            ("/", "text/html"),
            ("/dashboard.js", "text/javascript"),
            ("/dashboard.css", "text/css"),
            ("/verify.js", "text/javascript"),
        ] {
            let response = http().get(format!("{url}{path}")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(response.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
            assert!(!response.text().await.unwrap().is_empty());
        }
    })
    .await;
}

/// `GET /v1/genesis` is the genesis file the validator runs: the same chain, validators and
/// clients, and so the same genesis block.
#[tokio::test]
async fn the_genesis_is_served_as_its_file() {
    within(async {
        let cluster = cluster();
        let (status, body) = get(&cluster.urls[1], "/v1/genesis").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let served = tally_node::genesis_file::GenesisFile::from_json(&body.to_string()).unwrap();
        assert_eq!(served.genesis(), &cluster.genesis);
        assert_eq!(served.genesis().block().digest(), cluster.genesis.block().digest());
        assert_eq!(served.validators().len(), cluster.urls.len());
    })
    .await;
}

#[tokio::test]
async fn a_request_not_final_in_time_answers_202_and_a_full_queue_429() {
    within(async {
        let lone = lone();
        let (status, body) = get(&lone.url, "/healthz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let first = create_accounts(lone.chain_id, 1, &lone.client, &[account(1, AccountFlags::NONE)]);
        let waiting = tokio::spawn({
            let url = lone.url.clone();
            async move { post(&url, "/v1/requests", &first).await }
        });
        // While the first waits for a finality that never comes, the one waiting slot is taken
        // (it is taken before the request enters the mempool).
        loop {
            let (_, status) = get(&lone.url, "/v1/status").await;
            if status["mempool_requests"].as_u64().is_some_and(|requests| requests >= 1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = create_accounts(lone.chain_id, 2, &lone.client, &[account(2, AccountFlags::NONE)]);
        let response = http().post(format!("{}/v1/requests", lone.url)).json(&second).send().await.unwrap();
        assert_eq!(response.headers().get("retry-after").map(|value| value.to_str().unwrap()), Some("1"));
        let (status, body) = answer(response).await;
        assert_eq!((status, error_code(&body)), (StatusCode::TOO_MANY_REQUESTS, "busy"));

        let (status, body) = waiting.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["state"], "pending");
        assert_eq!(body["request_id"], "1");
        assert!(body["retry_after_ms"].is_u64());
        let client = hex::encode(public_key(&lone.client).as_ref());
        let (status, body) = get(&lone.url, &format!("/v1/requests/{client}/1")).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "request_not_found"));
        let (status, body) = get(&lone.url, "/v1/status").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["height"], "0");
        assert!(body["mempool_requests"].as_u64().unwrap() >= 1);
    })
    .await;
}

#[tokio::test]
async fn the_signed_json_of_the_api_docs_is_accepted() {
    within(async {
        // Build the request the way docs/API.md tells a client in any language to, without
        // the Rust helpers: the signature covers the events' binary encoding.
        let cluster = cluster();
        let accounts = [account(6_001, AccountFlags::NONE)];
        let mut message = Vec::new();
        message.extend_from_slice(&cluster.chain_id.to_be_bytes());
        message.push(RequestKind::CreateAccounts as u8);
        message.extend_from_slice(&6_000u128.to_be_bytes());
        let expires_ns = tally_chain::default_expiry();
        message.extend_from_slice(&expires_ns.to_be_bytes());
        message.extend_from_slice(&tally_ledger::encode_accounts(&accounts));
        let signature = tally_chain::keys::sign(&cluster.client, b"tally/request", &message);
        let request = json!({
            "kind": "create_accounts",
            "id": "6000",
            "expires_ns": expires_ns.to_string(),
            "client": hex::encode(public_key(&cluster.client).as_ref()),
            "events": [{ "id": "6001", "ledger": 7, "code": 10 }],
            "signature": hex::encode(signature.as_ref()),
        });
        let (status, body) = post(&cluster.urls[3], "/v1/requests", &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(statuses(&body), ["created"]);
    })
    .await;
}

#[tokio::test]
async fn a_validator_whose_storage_fails_answers_503_halted() {
    within(async {
        let dir = scratch("halted");
        let files = cluster::init(&Layout::loopback(4, free_base_port(8)), &dir).expect("init");
        let config = NodeConfig::load(&files.configs[0]).expect("config");
        // A file where the finalized block log's directory belongs: the log cannot open, and
        // the validator halts (storage failures are fail-stop).
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::write(config.data_dir.join("validator-finalized_data"), b"not a directory").unwrap();
        let client = key_file::read(&files.client_keys[0]).expect("client key");
        let node = tally_node::run(config).expect("the API starts even so");
        let url = format!("http://{}", node.api_address());
        let mut health = (StatusCode::OK, Value::Null);
        for _ in 0..200 {
            health = get(&url, "/healthz").await;
            if health.0 != StatusCode::OK {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(health, (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "halted" })));
        let (status, body) = get(&url, "/v1/status").await;
        assert_eq!((status, error_code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "halted"));
        let request = create_accounts(1, 1, &client, &[account(1, AccountFlags::NONE)]);
        let (status, body) = post(&url, "/v1/requests", &request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "halted"));
        let (status, body) = get(&url, "/v1/accounts/1").await;
        assert_eq!((status, error_code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "halted"));
        let metrics = http().get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("tally_halted 1"), "{metrics}");
        assert!(node.has_halted());
        // A halted validator still stops in order.
        tokio::task::spawn_blocking(move || node.stop()).await.unwrap().expect("a clean stop");
    })
    .await;
}

/// A connection that sends no request is closed after the header timeout, so idle or
/// trickling callers cannot hold a validator's connections and file descriptors.
#[tokio::test]
async fn an_idle_connection_is_closed() {
    use tokio::io::AsyncReadExt as _;
    within(async {
        let lone = lone();
        let address = lone.url.trim_start_matches("http://").to_string();
        let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
        let started = std::time::Instant::now();
        let mut buffer = [0u8; 64];
        // The server closes the connection (a read of 0 bytes, or a reset) without an answer.
        let read = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buffer)).await;
        let elapsed = started.elapsed();
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "still open after {elapsed:?}: {read:?}");
        assert!(elapsed >= Duration::from_secs(5), "closed too early: {elapsed:?}");
        // The validator still answers others.
        let (status, body) = get(&lone.url, "/healthz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
}

/// The binary wire: a signed request's own encoding, posted as `application/octet-stream`,
/// answers as its JSON form does, a retry of it answers the recorded outcome (through either
/// form), and its id cannot be reused for other events.
#[tokio::test]
async fn a_binary_request_is_final_and_its_id_applies_once() {
    use commonware_codec::Encode as _;
    within(async {
        let cluster = cluster();
        let (a, b) = (9_101u128, 9_102u128);
        let accounts = Request::create_accounts(
            cluster.chain_id,
            9_100,
            tally_chain::default_expiry(),
            &cluster.client,
            &[account(a, AccountFlags::NONE), account(b, AccountFlags::NONE)],
        )
        .unwrap();
        let (status, first) = post_binary(&cluster.urls[0], "/v1/requests", accounts.encode().to_vec()).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(statuses(&first), ["created", "created"]);
        assert_eq!(first["request_id"], "9100");
        assert_eq!(first["client"], hex::encode(public_key(&cluster.client).as_ref()));

        // The same bytes again, anywhere, and the same request as JSON: the recorded outcome.
        for url in &cluster.urls {
            let (status, again) = post_binary(url, "/v1/requests", accounts.encode().to_vec()).await;
            assert_eq!((status, &again), (StatusCode::OK, &first));
        }
        let (status, again) = post(&cluster.urls[1], "/v1/requests", &request_to_json(&accounts)).await;
        assert_eq!((status, &again), (StatusCode::OK, &first));

        // The id reused for other events.
        let other = Request::create_accounts(
            cluster.chain_id,
            9_100,
            tally_chain::default_expiry(),
            &cluster.client,
            &[account(9_103, AccountFlags::NONE)],
        )
        .unwrap();
        let (status, body) = post_binary(&cluster.urls[2], "/v1/requests", other.encode().to_vec()).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "request_id_conflict"), "{body}");

        // Transfers as bytes; the ledger applied them once.
        let transfers = Request::create_transfers(
            cluster.chain_id,
            9_104,
            tally_chain::default_expiry(),
            &cluster.client,
            &[transfer(9_105, a, b, 42)],
        )
        .unwrap();
        for _ in 0..2 {
            let (status, body) = post_binary(&cluster.urls[3], "/v1/requests", transfers.encode().to_vec()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(statuses(&body), ["created"]);
        }
        let (status, body) = get(&cluster.urls[3], &format!("/v1/accounts/{a}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["debits_posted"], "42");
    })
    .await;
}

/// Bytes that are not one request's encoding get the API's error form with a code that says
/// what is wrong, before any signature is checked.
#[tokio::test]
async fn a_malformed_binary_request_is_refused_with_its_code() {
    use commonware_codec::Encode as _;
    within(async {
        let cluster = cluster();
        let url = &cluster.urls[0];
        let good = Request::create_transfers(
            cluster.chain_id,
            9_110,
            tally_chain::default_expiry(),
            &cluster.client,
            &[transfer(9_111, 1, 2, 3)],
        )
        .unwrap()
        .encode()
        .to_vec();
        let edited = |at: usize, value: &[u8]| {
            let mut bytes = good.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            bytes
        };
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
            ("empty", Vec::new(), StatusCode::BAD_REQUEST, "malformed_request"),
            (
                "JSON sent as bytes",
                br#"{"kind": "create_transfers"}"#.to_vec(),
                StatusCode::BAD_REQUEST,
                "malformed_request",
            ),
            ("truncated", good[..good.len() - 1].to_vec(), StatusCode::BAD_REQUEST, "malformed_request"),
            ("a byte left over", [good.as_slice(), &[7]].concat(), StatusCode::BAD_REQUEST, "malformed_request"),
            ("a partial event", edited(57, &100u32.to_be_bytes()), StatusCode::BAD_REQUEST, "malformed_request"),
            ("an unknown kind", edited(0, &[9]), StatusCode::BAD_REQUEST, "unknown_kind"),
            ("no events", edited(57, &0u32.to_be_bytes()), StatusCode::BAD_REQUEST, "empty_batch"),
            ("too many events", edited(57, &(8_191u32 * 128).to_be_bytes()), StatusCode::BAD_REQUEST, "batch_too_long"),
            ("a weak client key", edited(25, &identity), StatusCode::FORBIDDEN, "unknown_client"),
        ];
        for (what, bytes, status, code) in cases {
            let (answered, body) = post_binary(url, "/v1/requests", bytes).await;
            assert_eq!((answered, error_code(&body)), (status, code), "{what}: {body}");
            assert!(body["error"]["message"].as_str().is_some_and(|message| !message.is_empty()), "{what}: {body}");
        }
        // A full batch's worth of bytes that claims more events than a request holds.
        let mut long = edited(57, &(8_191u32 * 128).to_be_bytes());
        long.splice(61..61, vec![0; 8_190 * 128]);
        let (status, body) = post_binary(url, "/v1/requests", long).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "batch_too_long"), "{body}");
    })
    .await;
}

/// A binary body is bounded like a JSON one: a declared length over the limit is refused before
/// it is read, and a chunked body as it crosses the limit.
#[tokio::test]
async fn an_oversized_binary_request_is_refused_with_413() {
    within(async {
        let url = &cluster().urls[0];
        let octets = "application/octet-stream";
        let length = 9 * 1024 * 1024;
        let reply =
            raw_post_as(url, "/v1/requests", octets, &format!("content-length: {length}\r\n"), Vec::new()).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
        assert!(reply.contains("body_too_large"), "{reply}");
        let chunk = vec![0u8; 1024 * 1024];
        let mut chunks: Vec<Vec<u8>> = (0..9)
            .map(|_| [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.clone(), b"\r\n".to_vec()].concat())
            .collect();
        chunks.push(b"0\r\n\r\n".to_vec());
        let reply = raw_post_as(url, "/v1/requests", octets, "transfer-encoding: chunked\r\n", chunks).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
        assert!(reply.contains("body_too_large"), "{reply}");
    })
    .await;
}

/// A binary request whose signature does not verify: a flipped bit, another chain, another key
/// under this client's name. None reaches the chain.
#[tokio::test]
async fn a_forged_binary_request_is_refused() {
    use commonware_codec::Encode as _;
    within(async {
        let cluster = cluster();
        let url = &cluster.urls[0];
        let events = [transfer(9_121, 1, 2, 3)];
        let good =
            Request::create_transfers(cluster.chain_id, 9_120, tally_chain::default_expiry(), &cluster.client, &events)
                .unwrap()
                .encode()
                .to_vec();
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut amount = good.clone();
        // The event's amount (bytes 48..64 of a transfer's encoding) changed after signing.
        amount[61 + 48] ^= 1;
        let other_chain = Request::create_transfers(
            cluster.chain_id + 1,
            9_120,
            tally_chain::default_expiry(),
            &cluster.client,
            &events,
        )
        .unwrap()
        .encode()
        .to_vec();
        let forger = key_file::generate();
        let mut forged =
            Request::create_transfers(cluster.chain_id, 9_120, tally_chain::default_expiry(), &forger, &events)
                .unwrap()
                .encode()
                .to_vec();
        forged[25..57].copy_from_slice(public_key(&cluster.client).as_ref());
        for (what, bytes) in
            [("flipped", flipped), ("amount", amount), ("other chain", other_chain), ("forged", forged)]
        {
            let (status, body) = post_binary(url, "/v1/requests", bytes).await;
            assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "bad_signature"), "{what}: {body}");
        }
        // A stranger's own request: signed well, but not listed.
        let stranger = key_file::generate();
        let bytes =
            Request::create_transfers(cluster.chain_id, 9_122, tally_chain::default_expiry(), &stranger, &events)
                .unwrap()
                .encode()
                .to_vec();
        let (status, body) = post_binary(url, "/v1/requests", bytes).await;
        assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "unknown_client"), "{body}");
        // Expiries: more than ten minutes ahead of the validator's clock; passed (the chain's
        // blocks are past it, so no block will ever include it); passed so long ago that the
        // chain no longer holds whether it was included.
        let expiring = |ttl_ns: i128| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128;
            let expires_ns = u64::try_from(now + ttl_ns).unwrap();
            Request::create_transfers(cluster.chain_id, 9_123, expires_ns, &cluster.client, &events)
                .unwrap()
                .encode()
                .to_vec()
        };
        let (status, body) = post_binary(url, "/v1/requests", expiring(660_000_000_000)).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "expiry_too_far"), "{body}");
        let (status, body) = post_binary(url, "/v1/requests", expiring(-60_000_000_000)).await;
        assert_eq!((status, error_code(&body)), (StatusCode::GONE, "request_expired"), "{body}");
        let (status, body) = post_binary(url, "/v1/requests", expiring(-3_600_000_000_000)).await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "outcome_not_held"), "{body}");
        // None of them applied.
        let (status, body) = get(url, "/v1/transfers/9121").await;
        assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "transfer_not_found"));
    })
    .await;
}
