#!/usr/bin/env bash
# Builds every release target (scripts/cross-env.sh: DEVAUTH_TARGETS) with every feature, checks
# each binary, and packs one tarball per target plus SHA256SUMS, from a plain Debian 12 amd64
# machine (scripts/install-cross-toolchain.sh first; no Docker, no rustup downloads).
#
# Checks, each fatal: gnu binaries need at most GLIBC_2.17 (objdump -T); musl binaries are static
# (file, no INTERP, no NEEDED); the ARMv6 and ARMv5TE binaries claim no newer CPU (readelf -A
# Tag_CPU_arch) and hold no instruction of one (objdump -d); every binary prints
# "devauth VERSION" for --version under qemu-user with its CPU (cortex-a7, arm1176, arm926; the
# x86_64 ones natively).
#
# Output, in target/release-artefacts/ (or DEVAUTH_RELEASE_DIR): devauth-VERSION-TRIPLE.tar.gz,
# each holding devauth-VERSION-TRIPLE/ with
#   devauth                    the stripped binary
#   config/*.toml              example configurations, boards/*.toml the board files
#   dist/systemd, dist/sysv    the service units (systemd, SysV init script)
#   LICENSE-MIT LICENSE-APACHE README.txt (the README's introduction and its install section)
# and SHA256SUMS over the tarballs. Packing is deterministic (the same binary at the same commit
# gives the same tarball): sorted, owner 0, mtime of the last commit, gzip without a name or time
# stamp. Whether a rebuild gives a bit-identical binary is not checked.
#
# Then each binary runs end-to-end tests against the loopback test server, under the same qemu
# (DEVAUTH_RELEASE_E2E, a libtest filter: default pair_generic_end_to_end, one whole pairing:
# code, approval, tokens stored, `devauth token`; "pair_" for all the pair tests, "-" to skip).
#
# usage: scripts/release.sh [TARGET...]     (default: all; names as for cross-build.sh)
set -euo pipefail
# shellcheck source=scripts/cross-env.sh
. "$(dirname "$0")/cross-env.sh"

case ${1:-} in -h | --help)
  usage "$0"
  exit 0
  ;;
esac
names=("$@")
[ $# -gt 0 ] || names=("${DEVAUTH_TARGETS[@]}")
out=${DEVAUTH_RELEASE_DIR:-${CARGO_TARGET_DIR:-$DEVAUTH_ROOT/target}/release-artefacts}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$DEVAUTH_ROOT/Cargo.toml" | head -n 1)
epoch=$(git -C "$DEVAUTH_ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
mkdir -p "$out"
use_toolchain debian # the end-to-end tests are built with the release builds' Rust 1.85

# readme_excerpt: the README up to "## Quick start" (what devauth is) and its "### Install"
# section (which artefact for which device, the glibc floors).
readme_excerpt() {
  awk '/^## Quick start/ {intro = 0} NR == 1 {intro = 1} intro {print}
    /^##+ / {inst = ($0 ~ /^### Install/)} inst {print}' "$DEVAUTH_ROOT/README.md"
}

rows=() failed=0
e2e_filter=${DEVAUTH_RELEASE_E2E:-pair_generic_end_to_end}
e2e_log=$(mktemp)
trap 'rm -f "$e2e_log"' EXIT
for name in "${names[@]}"; do
  target_setup "$name"
  t0=$(now)
  "$DEVAUTH_ROOT/scripts/cross-build.sh" "$name" # fails on a floor/static/CPU check
  secs=$(elapsed "$t0")
  bin=$(release_bin "$T_TRIPLE")
  linkage_ok "$bin"
  # shellcheck disable=SC2086 # T_RUNNER is a command prefix
  ran=$($T_RUNNER "$bin" --version 2>&1) || ran="exit $?: $ran"
  if [ "$ran" != "devauth $version" ]; then
    echo "error: ${T_RUNNER:-natively} $bin --version printed '$ran', not 'devauth $version'" >&2
    failed=1
  fi
  e2e=skipped
  if [ "$e2e_filter" != - ]; then
    if run_e2e "$bin" "$T_RUNNER" "$e2e_filter" >"$e2e_log" 2>&1; then
      e2e=$(tail -n 1 "$e2e_log")
    else
      tail -n 40 "$e2e_log" >&2
      echo "error: the end-to-end tests ($e2e_filter) failed with $bin" >&2
      e2e=FAILED failed=1
    fi
  fi
  pkg=devauth-$version-$T_TRIPLE
  stage=$(mktemp -d)
  mkdir -p "$stage/$pkg/dist"
  "$T_STRIP" -o "$stage/$pkg/devauth" "$bin"
  cp -r "$DEVAUTH_ROOT/config" "$DEVAUTH_ROOT/boards" "$stage/$pkg/"
  cp -r "$DEVAUTH_ROOT/dist/systemd" "$DEVAUTH_ROOT/dist/sysv" "$stage/$pkg/dist/"
  cp "$DEVAUTH_ROOT/LICENSE-MIT" "$DEVAUTH_ROOT/LICENSE-APACHE" "$stage/$pkg/"
  readme_excerpt >"$stage/$pkg/README.txt"
  tar -C "$stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -cf - "$pkg" | gzip -9n >"$out/$pkg.tar.gz"
  size=$(stat -c %s "$stage/$pkg/devauth")
  rm -rf "$stage"
  where=${T_CPU:-default}
  [ -n "$T_RUNNER" ] || where=native
  rows+=("| $T_TRIPLE | $LINKAGE | $size | $where | ${ran} | ${e2e#end-to-end: } | ${secs} s | $pkg.tar.gz |")
done
(cd "$out" && sha256sum devauth-"$version"-*.tar.gz >SHA256SUMS)
echo
echo "| target | glibc floor / static | stripped bytes | qemu -cpu | --version | e2e ($e2e_filter) | build | artefact |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "artefacts in $out:"
cat "$out/SHA256SUMS"
[ "$failed" = 0 ] || exit 1
