#!/usr/bin/env bash
# The Debian tools two end-to-end tests need beyond Rust (tests/deploy_files.rs): BusyBox, whose
# sh runs the SysV init script under test, and systemd-analyze (package systemd), which verifies
# the systemd unit. A standard Debian 12 machine has systemd (priority important) but not always
# busybox (optional); a minimal container has neither. Installs what is missing with apt-get
# (root), quietly, and does nothing when both are there. scripts/test.sh runs it, then sets
# DEVAUTH_REQUIRE_TEST_TOOLS=1 so that those tests fail instead of skipping without a tool.
#
# Usage: scripts/install-test-tools.sh     exit 0 when both tools are there (installed or found)
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin

missing=()
command -v busybox >/dev/null 2>&1 || missing+=(busybox)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-test-tools: missing ${missing[*]}: run as root or apt-get install them" >&2
    exit 1
fi
echo "install-test-tools: installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v busybox >/dev/null && command -v systemd-analyze >/dev/null
