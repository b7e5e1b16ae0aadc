#!/usr/bin/env bash
# Builds the release `devauth` binary for one or more targets without Docker (the Docker way is
# `cross build`, configured by Cross.toml), with Debian's Rust 1.85 driven by `cargo zigbuild`
# (scripts/cross-env.sh explains the toolchain). Run scripts/install-cross-toolchain.sh first.
# Each build is checked: glibc floor (gnu, at most GLIBC_2.17), static linkage (musl), and for
# ARMv6/ARMv5TE that no instruction of a newer CPU is in it; a failed check fails the script.
#
# usage: scripts/cross-build.sh TARGET...
#   TARGET: armv7 aarch64 x86_64 (glibc 2.17), armv7-musl aarch64-musl x86_64-musl armv6-musl
#           armv5te-musl (static), or their Rust triples, or `all`
# env:
#   DEVAUTH_FEATURES   cargo feature arguments, default every device feature (fbdev, png, drm, spi:
#                      what the size budget is measured on) and no compiled-in locale pack (the
#                      lang-* features; --all-features would add all 19, ~1.6 MB);
#                      e.g. DEVAUTH_FEATURES="--no-default-features" for a lean build,
#                      "--features fbdev,png,drm,spi,lang-ar" for one with the Arabic pack.
#   DEVAUTH_BUILD_STD_FEATURES  std features of the -Zbuild-std targets (default optimize_for_size;
#                      empty for none; "optimize_for_size,panic_immediate_abort" for the smallest)
#   DEVAUTH_THUMB=0    armv7 in ARM mode instead of Thumb-2; DEVAUTH_PREBUILT_STD=1 Debian's std
#                      (gnu only). Both only to measure what they cost (docs/size.md); use a
#                      separate CARGO_TARGET_DIR for such builds so the release ones stay cached.
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
read -r -a features <<<"${DEVAUTH_FEATURES:---features fbdev,png,drm,spi}"

summary=() failed=0
for name in "${names[@]}"; do
  target_setup "$name"
  echo "== $T_TRIPLE ($T_ZIG, $(/usr/bin/rustc --version)$([ "$T_BUILD_STD" = 1 ] && echo ", std from source"))"
  t0=$(now)
  zig_build "${features[@]}"
  secs=$(elapsed "$t0")
  bin=$(release_bin "$T_TRIPLE")
  verdict=ok
  linkage_ok "$bin" || verdict="FAILED: linkage"
  cpu_arch_ok "$bin" || verdict="FAILED: instructions of a newer CPU"
  [ "$verdict" = ok ] || failed=1
  summary+=("$(printf '%-32s %7ss %9s B stripped  %-12s %s  %s' "$T_TRIPLE" "$secs" \
    "$(stripped_size "$bin")" "$LINKAGE" "$verdict" "$bin")")
done
echo "== built (target, build time, stripped size, glibc floor or static, checks, path):"
printf '%s\n' "${summary[@]}"
[ "$failed" = 0 ] || {
  echo "error: a binary failed its checks (above)" >&2
  exit 1
}
