#!/usr/bin/env bash
# The dashboard's browser test: starts `tally dev` (four validators on loopback) in a temporary
# directory, drives the dashboard of one validator in headless Chromium while creating accounts
# and transfers through the API (tests/dashboard/dashboard.test.mjs), then stops the cluster
# with SIGINT. The page is given the cluster's genesis.json and checks the proofs of what it
# shows in the browser (crates/node/assets/verify.js), against vectors computed in Rust. Fails
# if the test fails or the cluster does not start or stop cleanly.
#
# Needs Node.js 20+ and npm (the npm registry for playwright-core); installs Debian's chromium
# when it is missing (as root). The screenshots land in /tmp/tally-dashboard*.png
# (TALLY_SCREENSHOT moves them). CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# How long the cluster may take to answer /healthz, and to stop after SIGINT.
start_timeout_s=120
stop_timeout_s=30
# Validator i's API port is base + 2i + 1 (see crates/node/src/cluster.rs); tally dev runs 4.
base_port=${TALLY_DEV_BASE_PORT:-27100}
validators=4

chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "dashboard-test: $chromium is missing; install it with: sudo apt-get install -y chromium" >&2
        exit 1
    fi
    echo "dashboard-test: installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
"$chromium" --version

echo "dashboard-test: npm ci in tests/dashboard"
(cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error)

# TALLY_BIN names a built binary (CI passes the one `cargo test --release` built); otherwise
# build one.
if [[ -n ${TALLY_BIN:-} ]]; then
    tally=$TALLY_BIN
else
    echo "dashboard-test: building tally"
    cargo build --quiet --release -p tally
    tally="${CARGO_TARGET_DIR:-$root/target}/release/tally"
fi
"$tally" --version

work=$(mktemp -d -t tally-dashboard-XXXXXX)
cluster_pid=""
log="$work/tally-dev.log"

stop_cluster() {
    # Stops the cluster with SIGINT and answers its exit status (124 if it had to be killed).
    [[ -n $cluster_pid ]] || return 0
    local pid=$cluster_pid status=0
    cluster_pid=""
    kill -INT "$pid" 2>/dev/null || true
    for ((waited = 0; waited < stop_timeout_s * 10; waited++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "dashboard-test: tally dev did not stop within ${stop_timeout_s}s of SIGINT; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 124
    fi
    wait "$pid" || status=$?
    return "$status"
}

cleanup() {
    stop_cluster || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "dashboard-test: starting tally dev in $work"
"$tally" dev --dir "$work/cluster" --base-port "$base_port" >"$log" 2>&1 &
cluster_pid=$!

# Answers 0 when every validator's /healthz answers 200.
all_healthy() {
    node -e '
        const urls = process.argv.slice(1);
        Promise.all(urls.map((url) => fetch(url).then((answer) => answer.ok, () => false)))
            .then((answers) => process.exit(answers.every(Boolean) ? 0 : 1));
    ' $(for ((i = 0; i < validators; i++)); do echo "http://127.0.0.1:$((base_port + 2 * i + 1))/healthz"; done)
}

api="http://127.0.0.1:$((base_port + 1))"
for ((waited = 0; ; waited++)); do
    # Our own cluster must still run: answers from another process on these ports do not count.
    if kill -0 "$cluster_pid" 2>/dev/null && all_healthy; then
        break
    fi
    if ! kill -0 "$cluster_pid" 2>/dev/null; then
        echo "dashboard-test: tally dev exited before answering; its output:" >&2
        cat "$log" >&2
        exit 1
    fi
    if ((waited >= start_timeout_s * 2)); then
        echo "dashboard-test: the validators did not all answer /healthz within ${start_timeout_s}s; tally dev said:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "dashboard-test: $validators validators up; the dashboard under test is $api/"

# The gateway's bearer token, from validator 0's config in the cluster directory.
token=$(sed -n 's/^token = "\([0-9a-f]*\)"$/\1/p' "$work/cluster/validator-0.toml")
if [[ -z $token ]]; then
    echo "dashboard-test: no gateway token in $work/cluster/validator-0.toml" >&2
    exit 1
fi

test_status=0
TALLY_URL=$api TALLY_TOKEN=$token CHROMIUM=$chromium TALLY_GENESIS="$work/cluster/genesis.json" \
    node --test --test-reporter=spec tests/dashboard/dashboard.test.mjs || test_status=$?

stop_status=0
stop_cluster || stop_status=$?
if ((test_status != 0)); then
    echo "dashboard-test: the browser test failed; tally dev said (last 40 lines):" >&2
    tail -n 40 "$log" >&2
    exit "$test_status"
fi
if ((stop_status != 0)); then
    echo "dashboard-test: tally dev exited with status $stop_status after SIGINT; its output:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
echo "dashboard-test: passed; screenshots in ${TALLY_SCREENSHOT:-/tmp/tally-dashboard.png} and beside it"
