#!/usr/bin/env bash
# devauth side by side with a Python (requests) and a Node (openid-client) device-flow client,
# against the same loopback test server in the same run; prints one markdown table.
#
#   bench/compare.sh                       # 60 s pending period (about 3 minutes in all)
#   BENCH_PENDING_SECS=10 bench/compare.sh # shorter, for CI
#
# Builds devauth, the test server and examples/bench_screen (release); installs, if missing:
# hyperfine and strace (Debian packages, when run as root), requests into bench/.venv (PyPI),
# openid-client into bench/clients/node/node_modules (npm, from package-lock.json). Nothing else
# leaves the machine: every request goes to 127.0.0.1. Knobs: see bench/compare.py.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p devauth -p devauth-testserver --bins --example bench_screen \
    >&2

missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v strace >/dev/null || missing+=(strace)
if ((${#missing[@]})) && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq "${missing[@]}" >&2 ||
        { apt-get update -qq >&2 && apt-get install -y -qq "${missing[@]}" >&2; } ||
        echo "bench: could not install ${missing[*]}; falling back" >&2
fi

if [ ! -x bench/.venv/bin/python ]; then
    python3 -m venv bench/.venv >&2
fi
bench/.venv/bin/python -c 'import requests' 2>/dev/null ||
    bench/.venv/bin/pip install -q -r bench/clients/requirements.txt >&2

if [ ! -d bench/clients/node/node_modules/openid-client ]; then
    (cd bench/clients/node && npm ci --no-audit --no-fund >&2)
fi

exec python3 bench/compare.py
