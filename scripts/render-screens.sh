#!/usr/bin/env bash
# Regenerates the pictures in docs/screens/ (shown in the README and used as golden images by
# tests/display_golden.rs) with `devauth render`: sample data, no network, no config.
#   scripts/render-screens.sh            # build (debug) and render
# After an intended change to the screens, run this and commit the new PNGs. The English ones
# are `devauth render`'s own files; every other language's (docs/screens/<tag>/, 1080p and
# 240x240 in every state) are written by the golden test itself in indexed colour
# (DEVAUTH_BLESS=1), about a third of the size.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked --bin devauth
bin=target/debug/devauth
out=docs/screens
mkdir -p "$out"
render() { # board state [extra args...]
    local board=$1 state=$2; shift 2
    "$bin" render --board "$board" --state "$state" --language en --out "$out/$board-$state.png" "$@"
    echo "$out/$board-$state.png"
}
# Every board in every state: the pictures are looked at by a person at every size.
for board in tv-1080p tv-720p pi-fb1-480x320 pi-ili9341-320x240 pi-st7789-240x240 pi-ssd1306-128x64; do
    for state in code renewed clock retrying paired denied error; do render "$board" "$state"; done
done
# Every other language, from its pack in locales/packs/.
rm -rf "${out:?}"/*/
DEVAUTH_BLESS=1 cargo test --quiet --locked --all-features --test display_golden \
    every_language_matches_its_golden_pictures
ls -d "$out"/*/
