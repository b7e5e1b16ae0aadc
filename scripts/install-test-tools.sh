#!/usr/bin/env bash
# Installs what devauth's end-to-end tests need beyond Rust and gcc, when it is missing (Debian
# packages, as root; quiet and idempotent: nothing happens when everything is there).
#   ip(8) (iproute2), unshare(1) and mount(8) (util-linux, mount): the tests that make their own
#   network namespace (tests/ipv6.rs, tests/proxy.rs; tests/common/netns.rs). Without root those
#   tests skip themselves.
#   busybox and systemd-analyze (package systemd): tests/deploy_files.rs runs the SysV script
#   under BusyBox sh and verifies the systemd unit. A standard Debian 12 machine has systemd
#   (priority important) but not always busybox (optional); a minimal container has neither.
#   swtpm (swtpm): the TPM of the sealed-store tests (src/tpm, src/store/seal, tests/seal.rs,
#   tests/powercut.rs; testserver/src/swtpm.rs).
# Without root it only says what is missing. scripts/test.sh runs it before `cargo test`, then
# sets DEVAUTH_REQUIRE_TEST_TOOLS=1, which makes tests/deploy_files.rs fail instead of skipping
# when busybox or systemd-analyze is missing, and DEVAUTH_TEST_REQUIRE_SWTPM=1 when swtpm is
# there, which makes the sealed-store tests fail instead of skipping from then on.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin

missing=()
for tool in ip:iproute2 unshare:util-linux mount:mount busybox:busybox systemd-analyze:systemd swtpm:swtpm; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${missing[*]} missing; the tests that need them skip or fail (run this as root)" >&2
  exit 0
fi
echo "installing ${missing[*]} (apt-get) for the end-to-end tests"
export DEBIAN_FRONTEND=noninteractive
apt-get -q -o Acquire::Retries=3 update -qq
apt-get -q -o Dpkg::Use-Pty=0 install -y -qq --no-install-recommends "${missing[@]}"
