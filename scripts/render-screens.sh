#!/usr/bin/env bash
# Regenerates the pictures in docs/screens/ (shown in the README and used as golden images by
# tests/display_golden.rs) with `devauth render`: sample data, no network, no config.
#   scripts/render-screens.sh            # build (debug) and render
# After an intended change to the screens, run this and commit the new PNGs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked --bin devauth
bin=target/debug/devauth
out=docs/screens
mkdir -p "$out"
render() { # board state [extra args...]
    local board=$1 state=$2; shift 2
    "$bin" render --board "$board" --state "$state" --out "$out/$board-$state.png" "$@"
    echo "$out/$board-$state.png"
}
for state in code renewed retrying paired; do render tv-1080p "$state"; done
render tv-720p code
render tv-720p clock
render pi-st7789-240x240 code
render pi-st7789-240x240 denied
render pi-ili9341-320x240 code
render pi-ssd1306-128x64 code
render pi-ssd1306-128x64 error
render pi-fb1-480x320 code
