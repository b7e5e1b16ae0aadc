#!/usr/bin/env bash
# Builds the release `devauth` binary for ARM targets without Docker (the Docker way is
# `cross build`, configured by Cross.toml). Run scripts/install-cross-toolchain.sh first
# (add --rustup there for the ARMv6 and musl targets).
#
# usage: scripts/cross-build.sh TARGET...
#   TARGET: armv7 aarch64 armv6 armv7-musl aarch64-musl (or their Rust triples), or `all`
# env:
#   DEVAUTH_TOOLCHAIN  debian|rustup. Default: Debian's Rust 1.85 where its std for the target is
#                      installed (armv7, aarch64), rustup's `+1.85` otherwise.
#   DEVAUTH_FEATURES   cargo feature arguments, default `--all-features` (what the size budget is
#                      measured on); e.g. DEVAUTH_FEATURES="--no-default-features" for a lean build.
# The binaries land in target/<triple>/release/devauth (or under CARGO_TARGET_DIR).
set -euo pipefail
# shellcheck source=scripts/cross-env.sh
. "$(dirname "$0")/cross-env.sh"

if [ $# -eq 0 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  usage "$0"
  exit 2
fi
names=("$@")
[ "$1" != all ] || names=("${DEVAUTH_TARGETS[@]}")
read -r -a features <<<"${DEVAUTH_FEATURES:---all-features}"

summary=()
for name in "${names[@]}"; do
  target_setup "$name"
  use_toolchain "$(default_toolchain "$name")"
  echo "== $T_TRIPLE with ${CARGO[*]} ($("${RUSTC_CMD[@]}" --version))"
  t0=$(now)
  (cd "$DEVAUTH_ROOT" && "${CARGO[@]}" build --release --locked -p devauth --bin devauth \
    --target "$T_TRIPLE" "${features[@]}")
  secs=$(elapsed "$t0")
  bin=$(release_bin "$T_TRIPLE")
  if [ "$T_TRIPLE" = arm-unknown-linux-gnueabihf ] && ! armv6_only "$bin"; then
    echo "error: $bin contains ARMv7 code and would not run on ARMv6 (Pi Zero/1): build it" \
      "with \`cross build --target $T_TRIPLE\` or set DEVAUTH_ARMV6_GCC (docs/deploy.md)" >&2
    exit 1
  fi
  summary+=("$(printf '%-32s %-7s %7ss %9s bytes  %s' "$T_TRIPLE" "$DEVAUTH_TOOLCHAIN" "$secs" \
    "$(stat -c %s "$bin")" "$bin")")
done
echo "== built (target, toolchain, build time, size, path):"
printf '%s\n' "${summary[@]}"
