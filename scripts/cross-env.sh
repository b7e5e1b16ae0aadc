# shellcheck shell=bash disable=SC2034 # the variables set here are read by the sourcing scripts
# Shared by the cross scripts (install-cross-toolchain.sh, cross-build.sh, ci-cross.sh,
# budget.sh): the table of ARM targets, the compiler/linker/qemu that goes with each, and how to
# call Debian's or rustup's Rust. Source it from bash; it only defines variables and functions.
#
# Two toolchains:
#   debian  Debian 12's rustc-web/cargo-web 1.85 (/usr/bin/rustc, /usr/bin/cargo) plus the armhf
#           and arm64 std unpacked into /usr/lib/rustlib. Needs only deb.debian.org: used by CI.
#   rustup  `cargo +1.85` with rustup's target std. Needs static.rust-lang.org (not a documented
#           registry, so never in CI): for the musl and ARMv6 targets Debian has no std for.

DEVAUTH_MSRV=1.85
# Debian version of rustc-web / cargo-web / libstd-rust-web-dev. bookworm-security also carries a
# newer rustc-web; the install script pins and holds this one (the unpacked ARM std must match).
DEVAUTH_RUST_DEB_VERSION=${DEVAUTH_RUST_DEB_VERSION:-1.85.0+dfsg3-1~deb12u3}

# The repository root (this file lives in scripts/).
DEVAUTH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Every target devauth supports, by short name. CI builds the first two.
DEVAUTH_TARGETS=(armv7 aarch64 armv6 armv7-musl aarch64-musl)

# target_triple NAME -> prints the Rust triple for a short name (a full triple passes through).
target_triple() {
  case $1 in
    armv7) echo armv7-unknown-linux-gnueabihf ;;
    aarch64) echo aarch64-unknown-linux-gnu ;;
    armv6) echo arm-unknown-linux-gnueabihf ;;
    armv7-musl) echo armv7-unknown-linux-musleabihf ;;
    aarch64-musl) echo aarch64-unknown-linux-musl ;;
    armv7-unknown-linux-gnueabihf | aarch64-unknown-linux-gnu | arm-unknown-linux-gnueabihf | \
      armv7-unknown-linux-musleabihf | aarch64-unknown-linux-musl) echo "$1" ;;
    *)
      echo "unknown target '$1' (one of: ${DEVAUTH_TARGETS[*]}, or their triples)" >&2
      return 1
      ;;
  esac
}

# target_setup NAME: sets T_TRIPLE, T_GNU (prefix of Debian's cross gcc/binutils), T_DEBARCH
# (Debian architecture whose libstd-rust-web-dev holds this target's std; empty if none),
# T_RUNNER (qemu-user command prefix that runs the binary here) and T_STATIC (1 for musl), and
# exports the linker, C compiler and archiver variables that cargo and cc-rs (ring) read.
target_setup() {
  T_TRIPLE=$(target_triple "$1") || return 1
  T_DEBARCH='' T_STATIC=0
  local qemu sysroot
  case $T_TRIPLE in
    aarch64-*) T_GNU=aarch64-linux-gnu qemu=qemu-aarch64 ;;
    arm-*)
      # ARMv6 needs an ARMv6 C toolchain (see armv6_only below); default: Debian's armhf one
      T_GNU=${DEVAUTH_ARMV6_GCC:-arm-linux-gnueabihf}
      # an ARM1176 CPU (Pi Zero/1) under qemu, so that any ARMv7 instruction traps
      qemu="qemu-arm -cpu arm1176"
      ;;
    *) T_GNU=arm-linux-gnueabihf qemu=qemu-arm ;;
  esac
  sysroot=$("$T_GNU-gcc" -print-sysroot 2>/dev/null || true)
  # Debian's cross gcc answers "/" and keeps the target's libc in /usr/<triple>
  [ -n "$sysroot" ] && [ "$sysroot" != / ] || sysroot=/usr/$T_GNU
  case $T_TRIPLE in
    armv7-unknown-linux-gnueabihf) T_DEBARCH=armhf ;;
    aarch64-unknown-linux-gnu) T_DEBARCH=arm64 ;;
    *-musl*) T_STATIC=1 ;;
  esac
  if [ "$T_STATIC" = 1 ]; then
    T_RUNNER=$qemu
  else
    T_RUNNER="$qemu -L $sysroot"
  fi

  local up=${T_TRIPLE//-/_}
  up=${up^^}
  local low=${T_TRIPLE//-/_}
  export "CARGO_TARGET_${up}_LINKER=$T_GNU-gcc"
  export "CC_${low}=$T_GNU-gcc"
  export "AR_${low}=$T_GNU-ar"
  if [ "$T_TRIPLE" = arm-unknown-linux-gnueabihf ]; then
    # Debian's armhf gcc defaults to ARMv7 + Thumb-2, which a Pi Zero/1 (ARM1176) cannot run:
    # compile ring's C and assembly for ARMv6 whatever the toolchain's default.
    export "CFLAGS_${low}=-march=armv6 -marm -mfpu=vfp -mfloat-abi=hard"
  fi
}

# armv6_only BIN: succeeds when the ARM attributes the linker merged into BIN claim no CPU
# newer than ARMv6. Debian's armhf startup files (crt1.o, crti.o, crtbegin.o, libc_nonshared.a)
# are ARMv7 Thumb-2 code, so a binary linked by Debian's gcc fails this and would die with
# SIGILL on a Pi Zero/1; `cross` (whose image has an ARMv6 toolchain) or DEVAUTH_ARMV6_GCC=<the
# prefix of an ARMv6 gcc, e.g. crosstool-ng's arm-unknown-linux-gnueabihf> produce one that passes.
armv6_only() {
  local arch
  arch=$("$T_GNU-readelf" -A "$1" | sed -n 's/^ *Tag_CPU_arch: *//p')
  echo "$1: Tag_CPU_arch ${arch:-unknown}"
  case $arch in v4* | v5* | v6*) return 0 ;; *) return 1 ;; esac
}

# use_toolchain debian|rustup: sets CARGO and RUSTC_CMD (arrays: the cargo and rustc commands to
# run) and the RUSTC / RUSTDOC variables that go with them. rustup's proxies usually come first
# in PATH, so Debian's toolchain is called by absolute path and RUSTC/RUSTDOC keep cargo from
# finding the proxies (without RUSTDOC, doctests would run rustup's rustdoc against Debian's std).
use_toolchain() {
  unset RUSTUP_TOOLCHAIN
  case $1 in
    debian)
      CARGO=(/usr/bin/cargo) RUSTC_CMD=(/usr/bin/rustc)
      export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
      ;;
    rustup)
      CARGO=(cargo "+$DEVAUTH_MSRV") RUSTC_CMD=(rustc "+$DEVAUTH_MSRV")
      unset RUSTC RUSTDOC
      ;;
    *)
      echo "unknown toolchain '$1' (debian or rustup)" >&2
      return 1
      ;;
  esac
  DEVAUTH_TOOLCHAIN=$1
}

# default_toolchain NAME|host: Debian's where Debian ships (and we unpacked) that target's std,
# rustup's otherwise. DEVAUTH_TOOLCHAIN=debian|rustup overrides.
default_toolchain() {
  local triple=x86_64-unknown-linux-gnu
  [ "$1" = host ] || triple=$(target_triple "$1")
  if [ -n "${DEVAUTH_TOOLCHAIN:-}" ]; then
    echo "$DEVAUTH_TOOLCHAIN"
  elif compgen -G "/usr/lib/rustlib/$triple/lib/libstd-*.rlib" >/dev/null; then
    echo debian
  else
    echo rustup
  fi
}

# release_bin TRIPLE: where cargo puts the release binary for a target ("host" for native).
release_bin() {
  local dir=${CARGO_TARGET_DIR:-$DEVAUTH_ROOT/target}
  if [ "$1" = host ]; then
    echo "$dir/release/devauth"
  else
    echo "$dir/$1/release/devauth"
  fi
}

# have_e2e_tests: whether the repository has end-to-end tests yet (tests/*.rs, tests/*/main.rs).
have_e2e_tests() {
  compgen -G "$DEVAUTH_ROOT/tests/*.rs" >/dev/null || compgen -G "$DEVAUTH_ROOT/tests/*/main.rs" >/dev/null
}

# run_e2e BIN RUNNER [FILTER]: runs the end-to-end tests on the host (with CARGO) against BIN,
# started through the RUNNER prefix (may be empty), keeping only tests whose name contains FILTER.
# Prints "skipped: ..." and returns 0 when there are no such tests yet; fails when the tests fail
# or when FILTER selected no test at all (a filter that matches nothing proves nothing).
run_e2e() {
  local bin=$1 runner=$2 filter=${3:-} log passed
  local -
  set -o pipefail
  if ! have_e2e_tests; then
    echo "skipped: no end-to-end tests (tests/*.rs) in the repository yet"
    return 0
  fi
  log=$(mktemp)
  # --test '*': every integration test target of the package, whatever its name
  echo "+ DEVAUTH_TEST_BIN=$bin DEVAUTH_TEST_RUNNER='$runner' ${CARGO[*]} test --locked -p devauth --test '*'${filter:+ -- $filter}"
  if ! (cd "$DEVAUTH_ROOT" && DEVAUTH_TEST_BIN=$bin DEVAUTH_TEST_RUNNER=$runner \
    "${CARGO[@]}" test --locked -p devauth --test '*' -- ${filter:+"$filter"}) 2>&1 | tee "$log"; then
    rm -f "$log"
    return 1
  fi
  passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
  rm -f "$log"
  if [ "$passed" -eq 0 ]; then
    # shellcheck disable=SC2016 # the quotes are literal
    echo "error: no end-to-end test ran${filter:+ (filter '$filter')}" >&2
    return 1
  fi
  echo "end-to-end: $passed passed"
}

# glibc_floor BIN: the newest GLIBC_x.y symbol version BIN needs ("none" for static binaries).
glibc_floor() {
  local floor
  floor=$("$T_GNU-objdump" -T "$1" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n 1)
  echo "${floor:-none}"
}

# usage SCRIPT: prints a script's header comment (everything up to its `set -euo pipefail`).
usage() { sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'; }

# Timing helpers: `t0=$(now)` ... `elapsed $t0` prints seconds with one decimal.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
