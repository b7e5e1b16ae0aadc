#!/usr/bin/env bash
# Where the code bytes of a devauth binary go, per crate: the sizes of the symbols in its symbol
# table (`nm -S`, demangled), grouped by the crate that names them, largest first. Needs a binary
# with its symbol table (the cross builds keep it: scripts/cross-env.sh, zig_build).
#
# Grouping: a Rust symbol counts for the first path segment of its name, or for the type's crate
# for `<Type as Trait>::method` (generic code is attributed to the crate of the type it was
# instantiated for, as cargo-bloat does); ring's C and assembly (ring_core_*) counts for ring;
# other C symbols (musl or glibc parts, compiler builtins) for "C: libc + builtins". Symbols
# without a size (and the bytes between symbols) are not counted, so the total is below the
# file size.
#
# usage: scripts/size-breakdown.sh BIN [NM]     (NM: e.g. arm-linux-gnueabihf-nm; default nm)
set -euo pipefail
bin=${1:?usage: scripts/size-breakdown.sh BIN [NM]}
nm=${2:-nm}
"$nm" -S -C --size-sort "$bin" | awk '
  NF >= 4 && $3 ~ /^[tTrRdDbB]$/ {
    size = strtonum("0x" $2)
    name = $0
    sub(/^[0-9a-f]+ [0-9a-f]+ . /, "", name)
    sub(/^<+/, "", name)
    sub(/^&(mut )?/, "", name)
    sub(/^dyn /, "", name)
    if (name ~ /^ring_core_/) crate = "ring"
    else if (index(name, "::") > 0) { crate = substr(name, 1, index(name, "::") - 1); sub(/[<\[ (].*/, "", crate) }
    else crate = "C: libc + builtins"
    if ($3 ~ /[tT]/) code[crate] += size; else data[crate] += size
    total += size
  }
  END {
    for (c in code) all[c] = 1
    for (c in data) all[c] = 1
    for (c in all) printf "%d\t%d\t%d\t%s\n", code[c] + data[c], code[c], data[c], c
    printf "%d\t-\t-\tTOTAL (sized symbols)\n", total > "/dev/stderr"
  }' | sort -rn | awk -F'\t' 'BEGIN {print "| crate | KiB | code KiB | data KiB |"; print "|---|---|---|---|"}
  {printf "| %s | %.1f | %.1f | %.1f |\n", $4, $1 / 1024, $2 / 1024, $3 / 1024}'
