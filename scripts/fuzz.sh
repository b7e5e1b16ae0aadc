#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a bounded time, starting from the
# committed seeds (fuzz/corpus/<target>/) and crash regressions (fuzz/regressions/<target>/).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 30 (CI); docs/fuzzing.md records the long local runs
#   TARGET              default: every target (device_authorization token_response id_token
#                       config store_file sealed_file locale_pack)
#
# Works with rustup's stable Rust alone: the targets are built with `--sanitizer none`
# (libFuzzer's coverage-guided search without AddressSanitizer, which would need nightly; the
# code under test has no `unsafe`, and Rust's own checks are on: debug assertions and overflow
# checks). cargo-fuzz is installed from crates.io when missing; libFuzzer itself is compiled
# from the libfuzzer-sys crate with the system C++ compiler (g++).
#
# A crash stops the run with exit 1 and leaves the input in fuzz/artifacts/<target>/; make it a
# regression (fuzz/regressions/<target>/, replayed by `cargo test --test fuzz_corpus`) with the
# fix. libFuzzer's grown corpus goes to fuzz/work/<target>/ (not committed), so repeated runs
# pick up where the last one stopped.
set -euo pipefail

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in -h | --help) usage; exit 0 ;; esac

ALL_TARGETS=(device_authorization token_response id_token config store_file sealed_file locale_pack)
SECS=30
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    SECS=$1
    shift
fi
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")

CARGO_FUZZ_VERSION=0.13.2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io" >&2
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

flags=(--sanitizer none --release --debug-assertions)
echo "fuzz.sh: building ${#TARGETS[@]} target(s) ($(rustc --version))" >&2
build_start=$(date +%s)
if [[ ${#TARGETS[@]} -eq ${#ALL_TARGETS[@]} ]]; then
    cargo fuzz build "${flags[@]}"
else
    for t in "${TARGETS[@]}"; do
        cargo fuzz build "${flags[@]}" "$t"
    done
fi
echo "fuzz.sh: built in $(($(date +%s) - build_start)) s" >&2

declare -A execs cov corpus result
status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "work/$t"
    dirs=("work/$t" "corpus/$t")
    [[ -d "regressions/$t" ]] && dirs+=("regressions/$t")
    log=$(mktemp)
    echo "fuzz.sh: $t for ${SECS} s" >&2
    # -max_len: bodies are capped at 64 KiB by default ([network] max_body_bytes), configs at
    # 64 KiB; -timeout: one input taking 10 s is a hang worth reporting.
    if cargo fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        result[$t]="ok"
    else
        result[$t]="CRASH"
        status=1
        grep -E "panicked at|^thread|SUMMARY|Test unit written" "$log" >&2 || tail -30 "$log" >&2
    fi
    execs[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # libFuzzer's last status line: "#N DONE cov: C ft: F corp: N/SIZE ...".
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    cov[$t]=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    corpus[$t]=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done_line")
    rm -f "$log"
done

printf '\n%-22s %8s %12s %6s %14s  %s\n' target seconds execs cov corpus result
for t in "${TARGETS[@]}"; do
    printf '%-22s %8s %12s %6s %14s  %s\n' "$t" "$SECS" "${execs[$t]:-?}" "${cov[$t]:-?}" \
        "${corpus[$t]:-?}" "${result[$t]}"
done
exit "$status"
