//! The loopback URLs in the docs and doc examples are the API URLs of the cluster `tally dev`
//! runs by default, so that a reader who copies one reaches a validator's API, never a
//! peer-to-peer port. (The doc examples themselves compile as doc tests.)

use std::path::Path;
use tally_node::cluster::{BASE_PORT_DEFAULT, Layout};

/// The files to check, from the workspace root, and whether only their doc comments count.
const FILES: &[(&str, bool)] = &[
    ("README.md", false),
    ("docs/API.md", false),
    ("docs/ARCHITECTURE.md", false),
    ("crates/client/src/lib.rs", true),
    ("crates/client/src/client.rs", true),
    ("crates/tally/src/main.rs", false),
    ("crates/tally/src/client.rs", true),
    ("crates/tally/src/validators.rs", false),
];

const LOOPBACK: &str = "http://127.0.0.1:";

/// The ports of every `http://127.0.0.1:PORT` in `text`.
fn loopback_ports(text: &str) -> Vec<u16> {
    text.match_indices(LOOPBACK)
        .map(|(at, _)| {
            let digits: String = text[at + LOOPBACK.len()..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or_else(|_| panic!("a port after {LOOPBACK} in {:?}", &text[at..]))
        })
        .collect()
}

#[test]
fn loopback_urls_in_the_docs_are_api_ports_of_tally_dev() {
    let layout = Layout::loopback(4, BASE_PORT_DEFAULT);
    let api_ports: Vec<u16> = (0..layout.validators).map(|index| layout.ports(index).1).collect();
    assert_eq!(api_ports, [7001, 7003, 7005, 7007]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut checked = 0;
    for (file, doc_comments_only) in FILES {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_else(|error| panic!("{file}: {error}"));
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if *doc_comments_only && !(trimmed.starts_with("//!") || trimmed.starts_with("///")) {
                continue;
            }
            for port in loopback_ports(line) {
                assert!(
                    api_ports.contains(&port),
                    "{file}:{}: port {port} is not the API port of a `tally dev` validator ({api_ports:?}): {line}",
                    number + 1
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "the docs hold loopback URLs to check ({checked} found)");
}

#[test]
fn ports_are_read_from_urls() {
    assert_eq!(loopback_ports("a http://127.0.0.1:7001/x and http://127.0.0.1:7000"), [7001, 7000]);
    assert!(loopback_ports("http://10.0.0.1:7000").is_empty());
}
