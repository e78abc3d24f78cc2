#!/usr/bin/env python3
"""Sign and send Tally requests from Python, with nothing but the standard library and PyNaCl.

This example creates two accounts and a transfer between them, the way any client in any
language can: encode the events in TigerBeetle's 128-byte layout, sign the request with the
client's ed25519 key, and POST it as JSON to any validator.

    pip install pynacl
    python3 tally_sign.py --validator http://127.0.0.1:7001 --key tally-dev/client-0.key

The key file holds the client's 32-byte private key (the ed25519 seed) as 64 hex digits, as
`tally init` and `tally dev` write it; the genesis must list its public key.
"""

import argparse
import json
import secrets
import struct
import sys
import time
import urllib.error
import urllib.request

try:
    import nacl.signing
except ImportError:
    sys.exit("PyNaCl is missing: pip install pynacl")

# Signatures are made under this namespace (see "The signed bytes" in docs/API.md).
REQUEST_NAMESPACE = b"tally/request"
KIND_CREATE_ACCOUNTS = 1
KIND_CREATE_TRANSFERS = 2

# TigerBeetle's Account and Transfer: 128 bytes, every integer little-endian, fields in order.
# struct has no 128-bit integers, so u128 fields are 16-byte strings from int.to_bytes.
#                     id  u128 x5     u64 u32 u32 u32 u16 u16 u64
ACCOUNT = struct.Struct("<16s 16s16s16s16s16s Q I I I H H Q")
#   id, debits_pending, debits_posted, credits_pending, credits_posted, user_data_128,
#   user_data_64, user_data_32, reserved, ledger, code, flags, timestamp
TRANSFER = struct.Struct("<16s 16s16s16s16s16s Q I I I H H Q")
#   id, debit_account_id, credit_account_id, amount, pending_id, user_data_128,
#   user_data_64, user_data_32, timeout, ledger, code, flags, timestamp
assert ACCOUNT.size == 128 and TRANSFER.size == 128

ACCOUNT_FLAGS = ["linked", "debits_must_not_exceed_credits", "credits_must_not_exceed_debits",
                 "history", "imported", "closed"]
TRANSFER_FLAGS = ["linked", "pending", "post_pending_transfer", "void_pending_transfer",
                  "balancing_debit", "balancing_credit", "closing_debit", "closing_credit", "imported"]


def u128(value):
    return value.to_bytes(16, "little")


def flag_bits(names, known):
    return sum(1 << known.index(name) for name in names)


def encode_account(account):
    """The 128 bytes of an account given as a dict of the API's fields (missing fields are 0)."""
    field = lambda name: int(account.get(name, 0))
    return ACCOUNT.pack(
        u128(field("id")), u128(field("debits_pending")), u128(field("debits_posted")),
        u128(field("credits_pending")), u128(field("credits_posted")), u128(field("user_data_128")),
        field("user_data_64"), field("user_data_32"), field("reserved"), field("ledger"), field("code"),
        flag_bits(account.get("flags", []), ACCOUNT_FLAGS), field("timestamp"),
    )


def encode_transfer(transfer):
    """The 128 bytes of a transfer given as a dict of the API's fields (missing fields are 0)."""
    field = lambda name: int(transfer.get(name, 0))
    return TRANSFER.pack(
        u128(field("id")), u128(field("debit_account_id")), u128(field("credit_account_id")),
        u128(field("amount")), u128(field("pending_id")), u128(field("user_data_128")),
        field("user_data_64"), field("user_data_32"), field("timeout"), field("ledger"), field("code"),
        flag_bits(transfer.get("flags", []), TRANSFER_FLAGS), field("timestamp"),
    )


def varint(value):
    """An unsigned LEB128 varint: 7 bits per byte, low bits first, high bit set on all but the last."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sign_request(signing_key, chain_id, kind, request_id, events, encode):
    """The JSON body of POST /v1/requests for `events` (dicts in the API's form)."""
    body = b"".join(encode(event) for event in events)
    # The last block timestamp that may include the request (ns since 1970): two minutes ahead,
    # as the Rust SDK sets it; at most ten minutes ahead of the validators' clocks.
    expires_ns = time.time_ns() + 120 * 10**9
    message = (chain_id.to_bytes(8, "big") + bytes([kind]) + request_id.to_bytes(16, "big")
               + expires_ns.to_bytes(8, "big") + body)
    # Namespaced signing: the namespace's length as a varint, the namespace, then the message.
    signed = varint(len(REQUEST_NAMESPACE)) + REQUEST_NAMESPACE + message
    signature = signing_key.sign(signed).signature
    return {
        "kind": "create_accounts" if kind == KIND_CREATE_ACCOUNTS else "create_transfers",
        "id": str(request_id),
        "expires_ns": str(expires_ns),
        "client": signing_key.verify_key.encode().hex(),
        "events": events,
        "signature": signature.hex(),
    }


def call(method, url, body=None):
    """One HTTP exchange: (status, JSON answer). Errors with a JSON body are answers too."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def submit(validator, request, wait_s=60):
    """Posts a signed request and waits until it is final. Sending it again is always safe:
    the (client, id) pair applies once and a retry answers the recorded outcome."""
    deadline = time.monotonic() + wait_s
    status, answer = call("POST", f"{validator}/v1/requests", request)
    while status == 202 and time.monotonic() < deadline:  # accepted, not final yet
        time.sleep(answer.get("retry_after_ms", 500) / 1000)
        status, answer = call("GET", f"{validator}/v1/requests/{request['client']}/{request['id']}")
        if status == 404:  # not final yet
            status = 202
    if status != 200:
        sys.exit(f"the request was not applied: HTTP {status} {json.dumps(answer)}")
    return answer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validator", required=True, help="a validator's API URL, http://HOST:PORT")
    parser.add_argument("--key", required=True, help="the client's key file (64 hex digits)")
    parser.add_argument("--chain-id", type=int, help="default: the one the validator reports")
    parser.add_argument("--account-id", type=int, default=secrets.randbits(63) + 1,
                        help="the first of the two accounts to create (default: random)")
    args = parser.parse_args()

    with open(args.key) as file:
        signing_key = nacl.signing.SigningKey(bytes.fromhex(file.read().strip()))
    chain_id = args.chain_id
    if chain_id is None:
        chain_id = int(call("GET", f"{args.validator}/v1/status")[1]["chain_id"])

    first, second = args.account_id, args.account_id + 1
    accounts = [
        {"id": str(first), "ledger": 1, "code": 10, "flags": ["history"]},
        {"id": str(second), "ledger": 1, "code": 10, "user_data_64": "42"},
    ]
    request = sign_request(signing_key, chain_id, KIND_CREATE_ACCOUNTS, secrets.randbits(128),
                           accounts, encode_account)
    answer = submit(args.validator, request)
    print("create_accounts:", json.dumps(answer))

    transfers = [{"id": str(first), "debit_account_id": str(first), "credit_account_id": str(second),
                  "amount": "1000", "ledger": 1, "code": 1}]
    request = sign_request(signing_key, chain_id, KIND_CREATE_TRANSFERS, secrets.randbits(128),
                           transfers, encode_transfer)
    answer = submit(args.validator, request)
    print("create_transfers:", json.dumps(answer))

    status, account = call("GET", f"{args.validator}/v1/accounts/{second}")
    print(f"account {second}:", json.dumps(account))
    statuses = [result["status"] for result in answer["results"]]
    if status != 200 or statuses != ["created"]:
        sys.exit(f"unexpected: HTTP {status}, statuses {statuses}")


if __name__ == "__main__":
    main()
