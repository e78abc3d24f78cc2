//! docs/openapi.json and docs/API.md describe the API the router serves: the same paths and
//! methods as `ROUTES`, every error code, every flag name.

use serde_json::Value;
use std::collections::BTreeSet;
use tally_ledger::{AccountFilterFlags, AccountFlags, QueryFilterFlags, TransferFlags};
use tally_node::api::failure::ERROR_CODES;
use tally_node::api::routes::{Method, ROUTES};

fn docs(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The names of a kind of flags.
fn named<F>(list: &[(F, &str)]) -> BTreeSet<String> {
    list.iter().map(|(_, name)| name.to_string()).collect()
}

fn openapi() -> Value {
    serde_json::from_str(&docs("openapi.json")).expect("docs/openapi.json is JSON")
}

#[test]
fn openapi_lists_exactly_the_routes_the_router_serves() {
    let document = openapi();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(["get", "post", "put", "patch", "delete"].contains(&method.as_str()), "{path}: {method}");
            documented.insert((method.clone(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> =
        ROUTES.iter().map(|route| (route.method.name().to_string(), route.path.to_string())).collect();
    assert_eq!(served.len(), ROUTES.len(), "a route is listed twice");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "served but not in docs/openapi.json: {undocumented:?}");
    assert!(unserved.is_empty(), "in docs/openapi.json but not served: {unserved:?}");
}

/// What the edge may answer on any route: 429 `busy` to a connection over its address's cap, and
/// on every route that reads a body, 400, 408 `body_timeout` and 413 `body_too_large`.
#[test]
fn openapi_lists_the_edge_answers_of_every_route() {
    let document = openapi();
    for route in ROUTES {
        let responses = &document["paths"][route.path][route.method.name()]["responses"];
        let mut expected = vec!["429"];
        if route.method == Method::Post {
            expected.extend(["400", "408", "413"]);
        }
        for status in expected {
            assert!(responses.get(status).is_some(), "{} {} does not list {status}", route.method.name(), route.path);
        }
    }
}

#[test]
fn openapi_names_every_error_code_and_flag() {
    let document = openapi();
    let schemas = &document["components"]["schemas"];
    let names = |value: &Value| -> BTreeSet<String> {
        value.as_array().unwrap().iter().map(|name| name.as_str().unwrap().to_string()).collect()
    };
    let codes = names(&schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"]);
    let expected: BTreeSet<String> = ERROR_CODES.iter().map(|(code, _, _)| code.to_string()).collect();
    assert_eq!(codes, expected);
    let flags = |schema: &str| names(&schemas[schema]["properties"]["flags"]["items"]["enum"]);
    assert_eq!(flags("Account"), named(AccountFlags::NAMED));
    assert_eq!(flags("Transfer"), named(TransferFlags::NAMED));
    assert_eq!(flags("AccountFilter"), named(AccountFilterFlags::NAMED));
    assert_eq!(flags("QueryFilter"), named(QueryFilterFlags::NAMED));
}

#[test]
fn api_md_documents_every_route_and_error_code() {
    let text = docs("API.md");
    for route in ROUTES {
        let line = format!("{} {}", route.method.name().to_uppercase(), route.path);
        assert!(text.contains(&line), "docs/API.md does not document `{line}`");
    }
    for (code, status, _) in ERROR_CODES {
        assert!(text.contains(&format!("`{code}`")), "docs/API.md does not document `{code}`");
        assert!(text.contains(&format!("| {status} ")), "docs/API.md does not mention status {status}");
    }
}
