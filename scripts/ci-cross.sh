#!/usr/bin/env bash
# CI entry point for the cross builds (scripts/test.sh runs it): everything below runs on a plain
# Debian 12 amd64 machine without Docker, downloading only from deb.debian.org, PyPI and
# crates.io. It builds the set of targets that covers each toolchain path of scripts/release.sh
# (which builds all of them) and tests each under qemu-user with a CPU of its class:
#
#   path                                   CI target      test
#   zig + -Zbuild-std, musl, 64-bit time   armv7-musl     whole e2e suite, qemu-arm -cpu cortex-a7
#   same, ARMv6 (no ARMv7 instructions)    armv6-musl     a whole pairing, qemu-arm -cpu arm1176
#   same, ARMv5TE (soft float, 32-bit atomics) armv5te-musl  --version + render, -cpu arm926
#   zig, glibc 2.17 stubs, Debian's std    aarch64        the pair tests, qemu-aarch64
#   zig + -Zbuild-std, x86_64 musl         x86_64-musl    peak RSS natively (budget.sh); then the
#                                                         real-kernel test boots it (test.sh)
#
# Steps: 1. install the toolchain (idempotent; needs root)  2. dependency policy: no aws-lc, no
# OpenSSL, ring present, for every CI target  3. MSRV: every build is Debian's Rust 1.85, and the
# aarch64 one uses no unstable flag at all  4. builds with their checks (glibc floor <= 2.17,
# static musl, no newer-CPU instructions on ARMv6/ARMv5TE: scripts/cross-build.sh)  5. the
# 64-bit time calls in the 32-bit musl binary (nm)  6. the qemu runs above  7. scripts/budget.sh
# (sizes, peak RSS; fails above a limit). Ends with a table: seconds and bytes of each step.
#
# usage: scripts/ci-cross.sh [PAIR_FILTER]     (default "pair_")
# env:   DEVAUTH_CI_TARGETS  the targets to build (default the five above)
set -euo pipefail
# shellcheck source=scripts/cross-env.sh
. "$(dirname "$0")/cross-env.sh"

pair_filter=${1:-pair_}
read -r -a targets <<<"${DEVAUTH_CI_TARGETS:-armv7-musl armv6-musl armv5te-musl aarch64 x86_64-musl}"
forbidden=(aws-lc-rs aws-lc-sys aws-lc-fips-sys openssl-sys openssl native-tls)
summary=()
# note WHAT SECONDS RESULT: a summary row
note() { summary+=("$(printf '| %s | %s | %s |' "$1" "$2" "$3")"); }
step() { printf '\n==== %s\n' "$*"; }
has() { local t; for t in "${targets[@]}"; do [ "$t" != "$1" ] || return 0; done; return 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$DEVAUTH_ROOT/Cargo.toml" | head -n 1)

# ---------------------------------------------------------------------------------------------
step "1. toolchain"
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
t0=$(now)
"${sudo[@]}" "$DEVAUTH_ROOT/scripts/install-cross-toolchain.sh"
note "toolchain install" "$(elapsed "$t0")" "$(/usr/bin/rustc --version | cut -d' ' -f1-2), $(cat "$DEVAUTH_ZIG_VENV/.devauth-pins")"
use_toolchain debian

# ---------------------------------------------------------------------------------------------
step "2. dependency policy: no aws-lc, no OpenSSL"
t0=$(now)
for name in "${targets[@]}"; do
  target_setup "$name"
  # The whole tree (normal, build and dev edges) for this target, one "name vX.Y.Z" a line. Not
  # `cargo tree -i <pkg>` per package: that fails when two versions of a name are locked, and
  # says "nothing to print" on stderr for locked packages this target does not build.
  tree=$(cd "$DEVAUTH_ROOT" && "${CARGO[@]}" tree --locked --workspace --all-features \
    --target "$T_TRIPLE" --prefix none --format '{p}')
  found=$(awk -v list="${forbidden[*]}" 'BEGIN {n = split(list, f, " "); for (i = 1; i <= n; i++) bad[f[i]] = 1}
    ($1 in bad) {print $1 "@" substr($2, 2)}' <<<"$tree" | sort -u)
  if [ -n "$found" ]; then
    for pkg in $found; do
      echo "error: $pkg is in the $T_TRIPLE dependency tree:" >&2
      (cd "$DEVAUTH_ROOT" && "${CARGO[@]}" tree --locked --workspace --all-features \
        --target "$T_TRIPLE" -i "$pkg") >&2 || true
    done
    exit 1
  fi
  grep -q '^ring v' <<<"$tree" || {
    echo "error: ring (the TLS crypto provider) is not in the $T_TRIPLE tree" >&2
    exit 1
  }
  echo "$T_TRIPLE: none of ${forbidden[*]}; ring present"
done
note "dependency policy" "$(elapsed "$t0")" "no aws-lc/OpenSSL, ring present (${targets[*]})"

# ---------------------------------------------------------------------------------------------
step "3+4. release builds with $(/usr/bin/rustc --version) (the MSRV), checked"
for name in "${targets[@]}"; do
  t0=$(now)
  "$DEVAUTH_ROOT/scripts/cross-build.sh" "$name"
  target_setup "$name"
  bin=$(release_bin "$T_TRIPLE")
  linkage_ok "$bin"
  what=$LINKAGE
  if cpu_arch_ok "$bin" >/dev/null; then
    [ "$T_ARCH" != armv6 ] && [ "$T_ARCH" != armv5te ] || what+=", no instruction newer than $T_ARCH"
  fi
  [ "$T_BUILD_STD" = 1 ] || what+=", stable (no -Z flag): MSRV build"
  note "build $T_TRIPLE" "$(elapsed "$t0")" "$(stripped_size "$bin") B stripped, $what"
done

# ---------------------------------------------------------------------------------------------
step "5. 64-bit time on 32-bit musl"
if has armv7-musl; then
  target_setup armv7-musl
  bin=$(release_bin "$T_TRIPLE")
  # musl >= 1.2 names its 64-bit calls __*_time64 and keeps the old names (clock_gettime,
  # sigtimedwait) as 32-bit compatibility wrappers around them. devauth calls sigtimedwait
  # (signals.rs) and std does not, so the sigtimedwait the binary holds tells which ABI devauth's
  # libc crate was built for: only __sigtimedwait_time64 (64-bit time_t, --cfg
  # libc_unstable_musl_v1_2) or the wrapper too (32-bit: the flag was lost). clock_gettime is in
  # both forms either way (std's own calls still use the 32-bit one, see src/clock.rs).
  syms=$(arm-linux-gnueabihf-nm "$bin" | awk '{print $NF}' |
    grep -E '^(__sigtimedwait_time64|sigtimedwait|__clock_gettime64)$' | sort -u | paste -sd' ')
  echo "$bin: $syms"
  [ "$syms" = "__clock_gettime64 __sigtimedwait_time64" ] || {
    echo "error: $bin calls musl's 32-bit sigtimedwait (--cfg libc_unstable_musl_v1_2 lost?)" >&2
    exit 1
  }
  note "time64 symbols, armv7 musl" 0 "$syms linked"
fi

# ---------------------------------------------------------------------------------------------
step "6. the binaries under qemu-user"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for name in "${targets[@]}"; do
  target_setup "$name"
  bin=$(release_bin "$T_TRIPLE")
  t0=$(now)
  # shellcheck disable=SC2086 # T_RUNNER is a command prefix
  out=$($T_RUNNER "$bin" --version) || out="exit $?"
  [ "$out" = "devauth $version" ] || {
    echo "error: ${T_RUNNER:-natively}: $bin --version printed '$out'" >&2
    exit 1
  }
  case $name in
    armv7-musl)
      run_e2e "$bin" "$T_RUNNER" | tee "$log"
      note "e2e suite, $T_TRIPLE, $T_RUNNER" "$(elapsed "$t0")" "$(tail -n 1 "$log")"
      ;;
    armv6-musl)
      run_e2e "$bin" "$T_RUNNER" pair_generic_end_to_end | tee "$log"
      note "whole pairing, $T_TRIPLE, $T_RUNNER" "$(elapsed "$t0")" "$(tail -n 1 "$log")"
      ;;
    armv5te-musl)
      png=$(mktemp --suffix=.png)
      # shellcheck disable=SC2086
      $T_RUNNER "$bin" render --board pi-ssd1306-128x64 --state code --out "$png"
      head -c 8 "$png" | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a' || {
        echo "error: $bin render under $T_RUNNER wrote no PNG" >&2
        exit 1
      }
      note "--version + render, $T_TRIPLE, $T_RUNNER" "$(elapsed "$t0")" "'$out', PNG of $(stat -c %s "$png") B"
      rm -f "$png"
      ;;
    aarch64)
      run_e2e "$bin" "$T_RUNNER" "$pair_filter" | tee "$log"
      note "e2e '$pair_filter', $T_TRIPLE, $T_RUNNER" "$(elapsed "$t0")" "$(tail -n 1 "$log")"
      ;;
    *) note "--version, $T_TRIPLE, ${T_RUNNER:-native}" "$(elapsed "$t0")" "'$out'" ;;
  esac
done

# ---------------------------------------------------------------------------------------------
step "7. budget"
budget_rc=0
t0=$(now)
"$DEVAUTH_ROOT/scripts/budget.sh" || budget_rc=$?
note "budget.sh" "$(elapsed "$t0")" "$([ "$budget_rc" = 0 ] && echo "within every limit" || echo FAILED)"

step "summary"
echo "| step | seconds | result |"
echo "|---|---|---|"
printf '%s\n' "${summary[@]}"
exit "$budget_rc"
