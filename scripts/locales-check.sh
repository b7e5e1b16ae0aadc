#!/usr/bin/env bash
# The locale packs' checks (docs/locales.md), run by scripts/test.sh:
#   1. Debian's fonts-noto-core, fonts-noto-cjk (OFL-1.1) and libharfbuzz-bin (hb-shape) are
#      installed when missing (apt, quiet; root or sudo);
#   2. the generator (tools/localegen, its own workspace and lockfile) is format-checked, built and
#      its unit tests run (its clippy is not run here: that is a second build of its
#      dependencies; run it by hand when changing it);
#   3. `localegen check`: every committed pack in locales/packs/ is byte for byte what the
#      catalogues and fonts give now;
#   4. `localegen hb-compare`: every run the generator shaped with harfrust is shaped again by
#      HarfBuzz's hb-shape and must give the same glyphs, clusters, advances and offsets
#      (differences allowed only where tools/localegen/hb-known-differences.txt lists them).
# Each step prints its time. Nothing is cached between runs beyond cargo's own target dir
# (LOCALEGEN_TARGET_DIR, default tools/localegen/target).
#
# usage: scripts/locales-check.sh [--no-install]
set -euo pipefail
cd "$(dirname "$0")/.."

install=1
[ "${1:-}" != --no-install ] || install=0

step() { printf '==> %s\n' "$*"; }
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - $1)) s"; }

packages=(fonts-noto-core fonts-noto-cjk libharfbuzz-bin)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$install" = 0 ]; then
        echo "locales-check: missing Debian packages: ${missing[*]}" >&2
        exit 1
    fi
    step "installing ${missing[*]} (Debian)"
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    t=$(date +%s)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    echo "installed in $(elapsed "$t")"
fi
dpkg-query -W -f='${Package} ${Version}\n' "${packages[@]}"

export CARGO_TARGET_DIR=${LOCALEGEN_TARGET_DIR:-$PWD/tools/localegen/target}
gen=(cargo run --quiet --locked --manifest-path tools/localegen/Cargo.toml --)

step "building tools/localegen"
t=$(date +%s)
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --manifest-path tools/localegen/Cargo.toml -- --check
fi
cargo build --quiet --locked --manifest-path tools/localegen/Cargo.toml
cargo test --quiet --locked --manifest-path tools/localegen/Cargo.toml
echo "built and unit-tested in $(elapsed "$t")"

step "localegen check: the committed packs are current"
t=$(date +%s)
"${gen[@]}" check
echo "checked in $(elapsed "$t")"

step "localegen hb-compare: harfrust's glyph runs against hb-shape's"
t=$(date +%s)
"${gen[@]}" hb-compare
echo "compared in $(elapsed "$t")"

echo "locales-check: ok in $(elapsed "$t0")"
