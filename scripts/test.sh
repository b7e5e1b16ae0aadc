#!/usr/bin/env bash
# All of devauth's checks, in the order CI runs them (`.ci/run` calls this script):
#   1. formatting and lints (rustfmt, clippy -D warnings) when those components are installed
#   2. the whole test suite on this machine (unit tests + end-to-end tests against the loopback
#      test server, hostile servers, power cuts, the sealed store against swtpm, the SysV script
#      under BusyBox sh and the systemd unit through systemd-analyze verify:
#      scripts/install-test-tools.sh installs those tools when missing), the locale packs' checks
#      (scripts/locales-check.sh: installs Debian's Noto fonts and hb-shape when missing), then
#      each fuzz target for 20 s (FUZZ_SECONDS)
#   3. the cross part (scripts/ci-cross.sh): Debian's Rust 1.85 (the MSRV) driven by cargo
#      zigbuild; release builds of armv7 musl, ARMv6 musl, ARMv5TE musl, aarch64 glibc 2.17 and
#      x86_64 musl with their floor/static/CPU checks, the end-to-end suite against the armv7
#      binary under qemu-arm -cpu cortex-a7, a pairing under -cpu arm1176, --version + render
#      under -cpu arm926, the pair tests against aarch64, and the size/RSS budget table.
#   4. the pairing screen on a real kernel (scripts/kernel-test.sh): Debian's 6.1 kernel under
#      qemu-system, screendumps decoded back to the QR, the sealed store with swtpm, and the
#      `kernel` sealer on a small 6.12 kernel with trusted keys that scripts/build-trusted-kernel.sh
#      builds from Debian's linux-source first; bounded by KERNEL_TEST_SECS (600 s);
#      KERNEL_TEST_EXPECT_FAIL lists scenarios allowed to fail (empty: all must pass).
#
# `scripts/test.sh --host-only` skips step 3 (it installs Debian packages and takes minutes);
# `--no-kernel` (or KERNEL_TEST=0) skips step 4.
set -euo pipefail
cd "$(dirname "$0")/.."

host_only=false
kernel=${KERNEL_TEST:-1}
for arg in "$@"; do
    case "$arg" in
        --host-only) host_only=true ;;
        --no-kernel) kernel=0 ;;
        *) echo "usage: scripts/test.sh [--host-only] [--no-kernel]" >&2; exit 2 ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }

if cargo fmt --version >/dev/null 2>&1; then
    step "cargo fmt --check"
    cargo fmt --all -- --check
else
    echo "note: rustfmt is not installed; skipping the format check"
fi

if cargo clippy --version >/dev/null 2>&1; then
    step "cargo clippy (all targets, -D warnings)"
    cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
else
    echo "note: clippy is not installed; skipping lints"
fi

step "cargo test (workspace)"
# ip, unshare: the network-namespace tests; busybox, systemd-analyze: tests/deploy_files.rs,
# which fails instead of skipping when one of those two is missing; swtpm: the TPM tests.
scripts/install-test-tools.sh
export DEVAUTH_REQUIRE_TEST_TOOLS=1
# The sealed-store tests fail instead of skipping when swtpm is missing from here on.
if command -v swtpm >/dev/null 2>&1; then
    export DEVAUTH_TEST_REQUIRE_SWTPM=1
fi
cargo test --workspace --all-features --locked

step "locale packs: current, and shaped as HarfBuzz shapes them (scripts/locales-check.sh)"
scripts/locales-check.sh

step "fuzzing: every cargo-fuzz target for a bounded time (scripts/fuzz.sh)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

if [ "$host_only" = false ] && [ -x scripts/ci-cross.sh ]; then
    step "ARM builds and tests (scripts/ci-cross.sh)"
    scripts/ci-cross.sh
fi

if [ "$kernel" != 0 ]; then
    step "the pairing screen on a real kernel under qemu-system (scripts/kernel-test.sh)"
    # Every scenario (a-j) must pass; KERNEL_TEST_EXPECT_FAIL may list some while a feature is
    # being built.
    # After the cross part it boots the static x86_64 musl release binary ci-cross.sh built (so a
    # release artefact is what runs on the real kernel, and no second release build is needed).
    given=()
    # shellcheck source=scripts/cross-env.sh
    . scripts/cross-env.sh # release_bin: where cross-build.sh put it (honours CARGO_TARGET_DIR)
    musl=$(release_bin "$(target_triple x86_64-musl)")
    [ "$host_only" = true ] || [ ! -x "$musl" ] || given=(--devauth "$musl")
    # Scenario j, the `kernel` sealer on Linux trusted keys: Debian's kernels have none, so a
    # small 6.12 kernel is built first (scripts/build-trusted-kernel.sh, cached under
    # target/kernel-test/trusted; about 4 min cold on 2 cores). KERNEL_TEST_TRUSTED=0 skips both.
    if [ "${KERNEL_TEST_TRUSTED:-1}" != 0 ]; then
        scripts/build-trusted-kernel.sh
        export KERNEL_TEST_TRUSTED=1
    fi
    scripts/kernel-test.sh --timeout "${KERNEL_TEST_SECS:-600}" \
        --expect-fail "${KERNEL_TEST_EXPECT_FAIL-}" "${given[@]}"
fi
