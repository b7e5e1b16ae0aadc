#!/usr/bin/env bash
# Quick start: one whole pairing on this machine, offline and without an account.
#
# Starts the bundled loopback authorization server (devauth-testserver) on 127.0.0.1, runs
# `devauth pair` against it with the terminal screen, lets the server approve the code after a
# few seconds (standing in for a person with a phone), then shows `devauth status` and a token.
set -euo pipefail
cd "$(dirname "$0")/.."

approve_after=${DEMO_APPROVE_AFTER:-6}
profile_dir=debug
cargo build --locked --quiet -p devauth -p devauth-testserver

work=$(mktemp -d "${TMPDIR:-/tmp}/devauth-demo.XXXXXX")
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

target/$profile_dir/devauth-testserver \
    --auto-approve-after "$approve_after" --interval 2 \
    >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^listening ' "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
base=$(sed -n 's/^listening //p' "$work/server.out")
[ -n "$base" ] || { echo "demo: the test server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

# The example config, pointed at this run's server port and a throw-away store.
sed -e "s#http://127.0.0.1:8765#$base#g" -e "s#/tmp/devauth-demo#$work#g" \
    config/loopback-demo.toml >"$work/devauth.toml"
devauth() { target/$profile_dir/devauth --config "$work/devauth.toml" "$@"; }

echo "== devauth pair   (test server at $base approves the code after ${approve_after}s)"
devauth pair
echo
echo "== devauth status"
devauth status
echo
echo "== devauth token --header   (a token from the loopback test server)"
devauth token --header
echo
echo "== what the server saw"
cat "$work/server.log"
