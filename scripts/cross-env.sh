# shellcheck shell=bash disable=SC2034 # the variables set here are read by the sourcing scripts
# Shared by the cross scripts (install-cross-toolchain.sh, cross-build.sh, ci-cross.sh,
# budget.sh): the table of ARM targets, the compiler/linker/qemu that goes with each, and how to
# call Debian's or rustup's Rust. Source it from bash; it only defines variables and functions.
#
# Toolchains (all Rust 1.85, the MSRV; only deb.debian.org and PyPI/crates.io are needed):
#   debian  Debian 12's rustc-web/cargo-web 1.85 (/usr/bin/rustc, /usr/bin/cargo): host builds
#           and tests, and the std of the x86_64/aarch64 gnu targets (aarch64 unpacked from
#           libstd-rust-web-dev:arm64 by install-cross-toolchain.sh).
#   zig     the same Debian cargo/rustc driven by `cargo zigbuild` (ziglang + cargo-zigbuild from
#           PyPI in DEVAUTH_ZIG_VENV): zig is the C compiler and linker, with glibc stubs of any
#           version (the 2.17 floor) and its own musl. Targets without a usable prebuilt std (all
#           musl ones, ARMv6, armv5te, and armv7 gnu for size) rebuild std from Debian's
#           rust-web-src with -Zbuild-std (RUSTC_BOOTSTRAP=1, only for those builds).
# Every release binary is built by the zig path (scripts/cross-build.sh, scripts/release.sh).

DEVAUTH_MSRV=1.85
# Debian version of rustc-web / cargo-web / libstd-rust-web-dev / rust-web-src. bookworm-security
# also carries a newer rustc-web; the install script pins and holds this one (the unpacked std
# and the std source must match the compiler).
DEVAUTH_RUST_DEB_VERSION=${DEVAUTH_RUST_DEB_VERSION:-1.85.0+dfsg3-1~deb12u3}
# The venv with zig and cargo-zigbuild, and the PyPI versions install-cross-toolchain.sh pins.
DEVAUTH_ZIG_VENV=${DEVAUTH_ZIG_VENV:-/opt/devauth-cross/venv}
DEVAUTH_ZIG_PINS=(ziglang==0.17.0 cargo-zigbuild==0.24.0)
# The newest glibc symbol version a gnu release binary may need (checked by release.sh/ci-cross).
DEVAUTH_GLIBC_FLOOR=2.17
# std features for -Zbuild-std builds. optimize_for_size picks std's smaller algorithms;
# panic messages are kept (no panic_immediate_abort): docs/size.md weighs the two.
DEVAUTH_BUILD_STD_FEATURES=${DEVAUTH_BUILD_STD_FEATURES-optimize_for_size}

# The repository root (this file lives in scripts/).
DEVAUTH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Every release target, by short name (scripts/release.sh builds all of them).
DEVAUTH_TARGETS=(armv7 aarch64 x86_64 armv7-musl aarch64-musl x86_64-musl armv6-musl armv5te-musl)

# target_triple NAME -> prints the Rust triple for a short name (a full triple passes through).
target_triple() {
  case $1 in
    armv7) echo armv7-unknown-linux-gnueabihf ;;
    aarch64) echo aarch64-unknown-linux-gnu ;;
    x86_64) echo x86_64-unknown-linux-gnu ;;
    armv7-musl) echo armv7-unknown-linux-musleabihf ;;
    aarch64-musl) echo aarch64-unknown-linux-musl ;;
    x86_64-musl) echo x86_64-unknown-linux-musl ;;
    armv6-musl) echo arm-unknown-linux-musleabihf ;;
    armv5te-musl) echo armv5te-unknown-linux-musleabi ;;
    *)
      local n
      for n in "${DEVAUTH_TARGETS[@]}"; do
        [ "$1" != "$(target_triple "$n")" ] || {
          echo "$1"
          return 0
        }
      done
      echo "unknown target '$1' (one of: ${DEVAUTH_TARGETS[*]}, or their triples)" >&2
      return 1
      ;;
  esac
}

# target_setup NAME: sets, for one release target,
#   T_NAME, T_TRIPLE   short name and Rust triple
#   T_ZIG              the --target for cargo zigbuild (gnu: triple.2.17, the glibc floor)
#   T_BUILD_STD        1 when std is rebuilt from source (-Zbuild-std)
#   T_RUSTFLAGS        the target's RUSTFLAGS (CARGO_TARGET_<TRIPLE>_RUSTFLAGS)
#   T_STATIC           1 for musl (static), 0 for gnu (dynamic, glibc floor checked)
#   T_ARCH             armv7 / armv6 / armv5te / aarch64 / x86_64 (what CPU it needs)
#   T_CPU              the qemu -cpu it is tested under ("" = qemu's default / native)
#   T_RUNNER           command prefix that runs the binary here ("" = natively)
#   T_OBJDUMP, T_READELF, T_STRIP   binutils that read this target's ELF files
#   T_GNU              kept for older callers: prefix of the binutils (empty on x86_64)
target_setup() {
  T_NAME=$1
  T_TRIPLE=$(target_triple "$1") || return 1
  local musl_flags="-C link-self-contained=no" sysroot='' qemu=''
  # Without link-self-contained=no rustc looks for rustup's self-contained crt objects (Debian's
  # rustc has none); zig supplies musl's startup files and libc.a instead.
  case $T_TRIPLE in
    armv7-unknown-linux-gnueabihf)
      T_ARCH=armv7 T_CPU=cortex-a7 T_BUILD_STD=1 T_STATIC=0 sysroot=/usr/arm-linux-gnueabihf
      # Thumb-2: ~25 % smaller code than ARM mode on every ARMv7 core. glibc 2.17 has no
      # 64-bit time_t on 32-bit ARM (glibc 2.34 added it): the Y2038-safe armv7 build is musl.
      T_RUSTFLAGS="-C target-feature=+thumb-mode"
      ;;
    aarch64-unknown-linux-gnu) T_ARCH=aarch64 T_CPU='' T_BUILD_STD=0 T_STATIC=0 T_RUSTFLAGS='' sysroot=/usr/aarch64-linux-gnu ;;
    x86_64-unknown-linux-gnu) T_ARCH=x86_64 T_CPU='' T_BUILD_STD=0 T_STATIC=0 T_RUSTFLAGS='' ;;
    armv7-unknown-linux-musleabihf)
      T_ARCH=armv7 T_CPU=cortex-a7 T_BUILD_STD=1 T_STATIC=1
      # 32-bit musl: the libc crate's 64-bit time_t (musl >= 1.2, which zig ships): see clock.rs
      T_RUSTFLAGS="$musl_flags --cfg libc_unstable_musl_v1_2 -C target-feature=+thumb-mode"
      ;;
    aarch64-unknown-linux-musl | x86_64-unknown-linux-musl)
      # 64-bit time_t already; the cfg tells the libc crate that zig's musl is 1.2 (1.2.5), so
      # it stops deprecating time_t and uses the same definitions as on the 32-bit targets.
      T_ARCH=${T_TRIPLE%%-*} T_CPU='' T_BUILD_STD=1 T_STATIC=1
      T_RUSTFLAGS="$musl_flags --cfg libc_unstable_musl_v1_2"
      ;;
    arm-unknown-linux-musleabihf)
      # Pi Zero / Zero W / 1: ARM1176JZF-S, ARMv6 + VFPv2 (Thumb-1 only: ARM mode)
      T_ARCH=armv6 T_CPU=arm1176 T_BUILD_STD=1 T_STATIC=1
      T_RUSTFLAGS="$musl_flags --cfg libc_unstable_musl_v1_2"
      ;;
    armv5te-unknown-linux-musleabi)
      # ARM926EJ-S class: ARMv5TE, soft float, 32-bit atomics only
      T_ARCH=armv5te T_CPU=arm926 T_BUILD_STD=1 T_STATIC=1
      T_RUSTFLAGS="$musl_flags --cfg libc_unstable_musl_v1_2"
      ;;
  esac
  # Knobs for measuring what each choice costs (docs/size.md), not for releases:
  # DEVAUTH_THUMB=0 builds armv7 in ARM mode; DEVAUTH_PREBUILT_STD=1 links Debian's prebuilt std
  # (gnu targets only: there is no prebuilt musl/ARMv6/ARMv5TE std here).
  if [ "${DEVAUTH_THUMB:-1}" = 0 ]; then
    T_RUSTFLAGS=${T_RUSTFLAGS/-C target-feature=+thumb-mode/}
    T_RUSTFLAGS=${T_RUSTFLAGS% }
  fi
  if [ "${DEVAUTH_PREBUILT_STD:-0}" = 1 ]; then
    [ "$T_STATIC" = 0 ] && [ -d "/usr/lib/rustlib/$T_TRIPLE" ] ||
      { echo "no prebuilt std for $T_TRIPLE (DEVAUTH_PREBUILT_STD=1)" >&2; return 1; }
    T_BUILD_STD=0
  fi
  T_ZIG=$T_TRIPLE
  [ "$T_STATIC" = 1 ] || T_ZIG=$T_TRIPLE.$DEVAUTH_GLIBC_FLOOR
  case $T_ARCH in
    aarch64) T_GNU=aarch64-linux-gnu qemu=qemu-aarch64 ;;
    x86_64) T_GNU='' ;;
    *) T_GNU=arm-linux-gnueabihf qemu=qemu-arm ;;
  esac
  T_OBJDUMP=${T_GNU:+$T_GNU-}objdump T_READELF=${T_GNU:+$T_GNU-}readelf T_STRIP=${T_GNU:+$T_GNU-}strip
  T_RUNNER=''
  if [ -n "$qemu" ]; then
    T_RUNNER="$qemu${T_CPU:+ -cpu $T_CPU}${sysroot:+ -L $sysroot}"
  fi
}

# zig_build [CARGO ARGS...]: `cargo zigbuild --release` of devauth for the target set up by
# target_setup, with Debian's cargo and rustc (rustup's proxies are taken off PATH) and the
# target's RUSTFLAGS; -Zbuild-std where T_BUILD_STD=1. Extra arguments go to cargo.
zig_build() {
  local up=${T_TRIPLE//-/_} path
  up=${up^^}
  [ -x "$DEVAUTH_ZIG_VENV/bin/cargo-zigbuild" ] ||
    { echo "error: no $DEVAUTH_ZIG_VENV/bin/cargo-zigbuild: run scripts/install-cross-toolchain.sh" >&2; return 1; }
  # PATH without rustup's cargo/rustc proxies, so that cargo-zigbuild's `cargo` is Debian's
  path=$(tr ':' '\n' <<<"$PATH" | grep -v -e '/\.cargo/bin$' -e '/\.rustup/' | paste -sd:)
  local args=(zigbuild --release --locked -p devauth --bin devauth --target "$T_ZIG")
  # CARGO_PROFILE_RELEASE_STRIP=none: the release checks read the symbol table (nm for musl's
  # 64-bit time calls, objdump's ARM/Thumb/data mapping symbols for the ARMv6/ARMv5TE scan), and
  # zig's linker drops every symbol for both `strip = true` and `strip = "debuginfo"`. What ships
  # or is measured is a copy stripped with the target's binutils (stripped_size, release.sh).
  local envs=("PATH=$DEVAUTH_ZIG_VENV/bin:$path" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
    "CARGO_TARGET_${up}_RUSTFLAGS=$T_RUSTFLAGS" CARGO_PROFILE_RELEASE_STRIP=none)
  if [ "$T_BUILD_STD" = 1 ]; then
    args+=(-Zbuild-std=std,panic_abort)
    [ -z "$DEVAUTH_BUILD_STD_FEATURES" ] || args+=("-Zbuild-std-features=$DEVAUTH_BUILD_STD_FEATURES")
    # -Z flags on Debian's stable compiler; set for these builds only
    envs+=(RUSTC_BOOTSTRAP=1)
  fi
  echo "+ ${envs[*]:1} cargo ${args[*]} $*"
  (cd "$DEVAUTH_ROOT" && env -u RUSTUP_TOOLCHAIN "${envs[@]}" /usr/bin/cargo "${args[@]}" "$@")
}

# use_toolchain debian: sets CARGO and RUSTC_CMD (arrays: the cargo and rustc commands to run)
# and the RUSTC / RUSTDOC variables that go with them. rustup's proxies usually come first in
# PATH, so Debian's toolchain is called by absolute path and RUSTC/RUSTDOC keep cargo from
# finding the proxies (without RUSTDOC, doctests would run rustup's rustdoc against Debian's std).
use_toolchain() {
  unset RUSTUP_TOOLCHAIN
  case $1 in
    debian)
      CARGO=(/usr/bin/cargo) RUSTC_CMD=(/usr/bin/rustc)
      export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
      ;;
    *)
      echo "unknown toolchain '$1' (debian)" >&2
      return 1
      ;;
  esac
  DEVAUTH_TOOLCHAIN=$1
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
  # --test '*': every integration test target of the package, whatever its name;
  # --all-features: the features the release binaries are built with (the spi tests too)
  echo "+ DEVAUTH_TEST_BIN=$bin DEVAUTH_TEST_RUNNER='$runner' ${CARGO[*]} test --locked --all-features -p devauth --test '*'${filter:+ -- $filter}"
  if ! (cd "$DEVAUTH_ROOT" && DEVAUTH_TEST_BIN=$bin DEVAUTH_TEST_RUNNER=$runner \
    "${CARGO[@]}" test --locked --all-features -p devauth --test '*' -- ${filter:+"$filter"}) 2>&1 | tee "$log"; then
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
  floor=$("$T_OBJDUMP" -T "$1" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n 1)
  echo "${floor:-none}"
}

# cpu_arch_ok BIN: for the ARMv6 and ARMv5TE targets, succeeds when the ARM attributes claim no
# newer CPU (readelf -A: Tag_CPU_arch v6 / v5TE, no Thumb-2) and no instruction the CPU lacks is
# in a function that can run without a runtime CPU check (scripts/cpu-scan.awk explains which
# functions are dispatched on AT_HWCAP: ring's NEON code, musl's ARMv7 atomics). Needs BIN's
# symbol table (the unstripped build). Prints what it found as CPU_FINDING. Other targets:
# nothing to check, succeeds.
cpu_arch_ok() {
  local bin=$1 tag thumb want scan faults dispatched
  case $T_ARCH in
    armv6) want='v6' ;;
    armv5te) want='v5TE?' ;;
    *)
      CPU_FINDING=''
      return 0
      ;;
  esac
  tag=$("$T_READELF" -A "$bin" | sed -n 's/^ *Tag_CPU_arch: *//p')
  thumb=$("$T_READELF" -A "$bin" | sed -n 's/^ *Tag_THUMB_ISA_use: *//p')
  scan=$(awk -v arch="$T_ARCH" -f "$DEVAUTH_ROOT/scripts/cpu-scan.awk" \
    <("$T_READELF" -sW "$bin" | awk '$4 == "FUNC" && $7 != "UND" {print $2, $8}' | LC_ALL=C sort) \
    <("$T_OBJDUMP" -d --no-show-raw-insn "$bin"))
  read -r faults dispatched < <(sed -n 's/^TOTAL //p' <<<"$scan")
  grep '^FAULT' <<<"$scan" | head -n 20 || true
  CPU_FINDING="Tag_CPU_arch ${tag:-none}, Thumb ${thumb:-none}; ${faults:-?} newer-CPU insns outside HWCAP-dispatched code (${dispatched:-?} inside)"
  echo "$bin: $CPU_FINDING"
  [ "$(grep -c '' <<<"$scan")" -gt 0 ] && [ -n "$faults" ] && [[ $tag =~ ^$want$ ]] &&
    [ "$thumb" != Thumb-2 ] && [ "$faults" = 0 ]
}

# linkage_ok BIN: gnu: the glibc floor is at most DEVAUTH_GLIBC_FLOOR; musl: statically linked
# (`file` says so, no program interpreter, no NEEDED library). Prints the finding as LINKAGE.
linkage_ok() {
  local bin=$1 floor
  if [ "$T_STATIC" = 1 ]; then
    if file -b "$bin" | grep -Eq 'static(-pie)? linked|statically linked' &&
      ! "$T_READELF" -lW "$bin" | grep -q 'INTERP' &&
      ! "$T_READELF" -dW "$bin" | grep -q '(NEEDED)'; then
      LINKAGE=static
      return 0
    fi
    LINKAGE="NOT static: $(file -b "$bin")"
    return 1
  fi
  floor=$(glibc_floor "$bin")
  LINKAGE=$floor
  [ "$floor" != none ] && [ "$(printf '%s\n' "$floor" "GLIBC_$DEVAUTH_GLIBC_FLOOR" | sort -V | tail -n 1)" = "GLIBC_$DEVAUTH_GLIBC_FLOOR" ]
}

# stripped_size BIN: bytes of BIN after stripping a copy with the target's strip.
stripped_size() {
  local copy
  copy=$(mktemp)
  "$T_STRIP" -o "$copy" "$1"
  stat -c %s "$copy"
  rm -f "$copy"
}

# usage SCRIPT: prints a script's header comment (everything up to its `set -euo pipefail`).
usage() { sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'; }

# Timing helpers: `t0=$(now)` ... `elapsed $t0` prints seconds with one decimal.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }
