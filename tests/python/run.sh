#!/usr/bin/env bash
# Runs tally_sign.py against a fresh local cluster: starts `tally dev` in a temporary
# directory, waits until its first validator answers, runs the example, and stops the cluster.
#
#   cargo build -p tally && tests/python/run.sh
#
# TALLY (default: target/debug/tally) names the binary, TALLY_BASE_PORT (default: 7400) the
# cluster's first port. Needs Python 3 with PyNaCl (pip install pynacl).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tally="${TALLY:-$here/../../target/debug/tally}"
base_port="${TALLY_BASE_PORT:-7400}"
api="http://127.0.0.1:$((base_port + 1))"

python3 -c "import nacl.signing" 2>/dev/null || { echo "PyNaCl is missing: pip install pynacl" >&2; exit 1; }
[ -x "$tally" ] || { echo "no tally binary at $tally: cargo build -p tally, or set TALLY" >&2; exit 1; }

dir="$(mktemp -d)"
"$tally" dev --dir "$dir/cluster" --base-port "$base_port" >"$dir/dev.log" 2>&1 &
dev_pid=$!
trap 'kill "$dev_pid" 2>/dev/null; wait "$dev_pid" 2>/dev/null; rm -rf "$dir"' EXIT

# Wait up to 30 s for the first validator's API.
for _ in $(seq 60); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$api/healthz" 2>/dev/null; then
        break
    fi
    kill -0 "$dev_pid" 2>/dev/null || { cat "$dir/dev.log" >&2; exit 1; }
    sleep 0.5
done

python3 "$here/tally_sign.py" --validator "$api" --key "$dir/cluster/client-0.key"
