#!/usr/bin/env python3
"""Check a Tally receipt from Python, trusting no validator: only the genesis file.

A receipt proves what a finalized request did: its block's header and the Merkle path from the
request to the block's requests root, and the header of the block above, signed by a quorum of
the genesis validators, with the path from the request's outcome to that header's results root.
Everything here follows "GET /v1/requests/{client}/{id}/receipt" and "GET /v1/headers/{height}"
in docs/API.md; hashlib does SHA-256 and PyNaCl the Ed25519 signatures.

    pip install pynacl
    python3 tally_verify.py --validator http://127.0.0.1:7001 --genesis tally-dev/genesis.json \\
        --client <64 hex> --id <request id>

Prints `verified at height H by N of M validators` and the outcome, or `unverified: why` on
standard error with exit status 3.
"""

import argparse
import hashlib
import json
import sys
import urllib.error
import urllib.request

try:
    import nacl.exceptions
    import nacl.signing
except ImportError:
    sys.exit("PyNaCl is missing: pip install pynacl")

CONSENSUS_NAMESPACE = b"tally/consensus"
HEADER_SIZE = 206
STATUS_NAMES = {1: "accounts", 2: "transfers"}


class Unverified(Exception):
    pass


def sha256(*parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


class Reader:
    def __init__(self, data):
        self.data = data
        self.at = 0

    def take(self, count):
        if self.at + count > len(self.data):
            raise Unverified("the receipt ends early")
        chunk = self.data[self.at:self.at + count]
        self.at += count
        return chunk

    def uint(self, size):
        return int.from_bytes(self.take(size), "big")

    def varint(self):
        value, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise Unverified("a varint is too long")


def read_header(reader):
    raw = reader.take(HEADER_SIZE)
    r = Reader(raw)
    header = {
        "version": r.uint(2), "epoch": r.uint(8), "view": r.uint(8), "leader": r.take(32),
        "parent_view": r.uint(8), "parent": r.take(32), "height": r.uint(8), "timestamp": r.uint(8),
        "request_count": r.uint(4), "requests_root": r.take(32), "state_digest": r.take(32),
        "results_root": r.take(32),
    }
    header["digest"] = sha256(raw)
    return header


def read_proof(reader):
    leaf_count = reader.uint(4)
    siblings = [reader.take(32) for _ in range(reader.varint())]
    return leaf_count, siblings


def read_result(reader):
    start = reader.at
    tag = reader.take(1)[0]
    if tag in STATUS_NAMES:
        events = [(reader.uint(8), reader.uint(4)) for _ in range(reader.uint(4))]
        result = {"kind": STATUS_NAMES[tag], "events": events}
    elif tag == 3:
        result = {"kind": "refused", "error": (reader.take(1)[0], reader.uint(8), reader.uint(8))}
    else:
        raise Unverified(f"unknown result kind {tag}")
    return result, reader.data[start:reader.at]


def merkle_includes(leaf, position, proof, root):
    """Commonware's bmt: leaves hashed with their position, odd levels pair the last node with
    itself, and the root hashes in the leaf count."""
    leaf_count, siblings = proof
    if position >= leaf_count:
        return False
    node = sha256(position.to_bytes(4, "big"), leaf)
    level, siblings = leaf_count, iter(siblings)
    while level > 1:
        if position % 2 == 0 and position + 1 >= level:
            node = sha256(node, node)
        else:
            sibling = next(siblings, None)
            if sibling is None:
                return False
            node = sha256(node, sibling) if position % 2 == 0 else sha256(sibling, node)
        position //= 2
        level = (level + 1) // 2
    if next(siblings, None) is not None:
        return False
    return sha256(leaf_count.to_bytes(4, "big"), node) == root


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def check_certified(reader, genesis, height):
    """The header at `height`, proven final by the certificate of the nearest certified block
    at or above it. Returns the header and the signers' keys."""
    header = read_header(reader)
    if header["height"] != height:
        raise Unverified(f"the certified header is of height {header['height']}, not {height}")
    below = header
    for _ in range(reader.uint(2)):
        above = read_header(reader)
        follows = (above["parent"] == below["digest"] and above["height"] == below["height"] + 1
                   and above["epoch"] == below["epoch"] and above["parent_view"] == below["view"]
                   and above["view"] > below["view"])
        if not follows:
            raise Unverified(f"the header at height {above['height']} does not follow the one below")
        below = above
    epoch, view, parent_view = reader.varint(), reader.varint(), reader.varint()
    digest = reader.take(32)
    if digest != below["digest"]:
        raise Unverified("the certificate finalizes another block")
    if (epoch, view, parent_view) != (below["epoch"], below["view"], below["parent_view"]):
        raise Unverified("the certificate's round is not the certified header's")
    bits = reader.uint(8)
    validators = genesis["validators"]
    if bits != len(validators):
        raise Unverified(f"the certificate has {bits} signer bits for {len(validators)} validators")
    bitmap = reader.take((bits + 7) // 8)
    signers = [validators[i] for i in range(bits) if bitmap[i // 8] >> (i % 8) & 1]
    signatures = [reader.take(64) for _ in range(reader.varint())]
    if reader.at != len(reader.data):
        raise Unverified("bytes follow the certificate")
    if len(signatures) != len(signers):
        raise Unverified("the certificate's signatures do not match its signers")
    faults = (len(validators) - 1) // 3
    if len(signers) < len(validators) - faults:
        raise Unverified(f"{len(signers)} signatures are not a quorum of {len(validators)}")
    namespace = CONSENSUS_NAMESPACE + genesis["chain_id"].to_bytes(8, "big") + b"_FINALIZE"
    message = varint(len(namespace)) + namespace + varint(epoch) + varint(view) + varint(parent_view) + digest
    for key, signature in zip(signers, signatures):
        try:
            nacl.signing.VerifyKey(key).verify(message, signature)
        except nacl.exceptions.BadSignatureError:
            raise Unverified(f"a signature by {key.hex()} does not verify") from None
    return header, signers


def verify_receipt(data, genesis, client=None, request_id=None):
    """Checks a receipt's bytes against the genesis; returns the height, the signers and the
    outcome it proves. With `client` and `request_id`, checks it is that request's."""
    reader = Reader(data)
    key_client, key_id = reader.take(32), reader.uint(16)
    if client is not None and (key_client != client or key_id != request_id):
        raise Unverified(f"the receipt is for request {key_id} of client {key_client.hex()}")
    request_digest, position = reader.take(32), reader.uint(4)
    requests_proof = read_proof(reader)
    events_digest, height, timestamp = reader.take(32), reader.uint(8), reader.uint(8)
    result, result_bytes = read_result(reader)
    results_proof = read_proof(reader)
    header = read_header(reader)
    above, signers = check_certified(Reader(data[reader.at:]), genesis, header["height"] + 1)
    if above["parent"] != header["digest"]:
        raise Unverified("the certified header does not follow the request's block")
    if requests_proof[0] != header["request_count"] or not merkle_includes(
            request_digest, position, requests_proof, header["requests_root"]):
        raise Unverified(f"the request is not in the block at height {header['height']}")
    if height != header["height"]:
        raise Unverified(f"the outcome says height {height}, the block is at {header['height']}")
    leaf = sha256(key_client, key_id.to_bytes(16, "big"), events_digest, height.to_bytes(8, "big"),
                  timestamp.to_bytes(8, "big"), result_bytes)
    if results_proof[0] != header["request_count"] or not merkle_includes(
            leaf, position, results_proof, above["results_root"]):
        raise Unverified(f"the outcome is not the one the block at height {height + 1} commits to")
    return {"height": height, "signers": len(signers), "validators": len(genesis["validators"]),
            "timestamp": timestamp, "result": result}


def load_genesis(path):
    with open(path) as file:
        document = json.load(file)
    # Validators in the order of their keys' bytes: the order of the certificate's signer bits.
    keys = sorted(bytes.fromhex(validator["key"]) for validator in document["validators"])
    return {"chain_id": int(document["chain_id"]), "validators": keys}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--validator", required=True, help="a validator's API URL")
    parser.add_argument("--genesis", required=True, help="the cluster's genesis.json")
    parser.add_argument("--client", required=True, help="the client's public key, 64 hex digits")
    parser.add_argument("--id", required=True, type=int, help="the request id")
    args = parser.parse_args()
    genesis = load_genesis(args.genesis)
    url = f"{args.validator.rstrip('/')}/v1/requests/{args.client}/{args.id}/receipt"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
            status = response.status
    except urllib.error.HTTPError as error:
        sys.exit(f"{url}: {error.code} {error.read().decode(errors='replace')}")
    if status != 200:
        sys.exit(f"{url}: {status} (not final yet: ask again shortly)")
    try:
        proven = verify_receipt(bytes.fromhex(answer["receipt"]), genesis, bytes.fromhex(args.client), args.id)
    except (Unverified, ValueError, KeyError, TypeError) as error:
        print(f"unverified: {error}", file=sys.stderr)
        sys.exit(3)
    print(f"verified at height {proven['height']} by {proven['signers']} of {proven['validators']} validators")
    kind = proven["result"]["kind"]
    for index, (timestamp, status) in enumerate(proven["result"].get("events", [])):
        print(f"{kind} event {index}: status code {status}, timestamp {timestamp}")


if __name__ == "__main__":
    main()
