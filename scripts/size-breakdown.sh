#!/usr/bin/env bash
# Where the code bytes of a devauth binary go, per crate: the sizes of the symbols in its symbol
# table (`nm -S`, demangled), grouped by the crate that names them, largest first. Needs a binary
# with its symbol table (the cross builds keep it: scripts/cross-env.sh, zig_build).
#
# Grouping: a Rust symbol counts for the first path segment of its name, or for the type's crate
# for `<Type as Trait>::method` (generic code is attributed to the crate of the type it was
# instantiated for, as cargo-bloat does); ring's C and assembly (ring_core_*) counts for ring;
# other C symbols (musl or glibc parts, compiler builtins) for "C: libc + builtins"; rustc's
# unnamed constants (.Lanon.*: string literals, tables) cannot be attributed and stay apart.
# Aliases (two names at one address with one size) count once. Symbols
# without a size (and the bytes between symbols) are not counted, so the total is below the
# file size.
#
# usage: scripts/size-breakdown.sh BIN [NM]     (NM: e.g. arm-linux-gnueabihf-nm; default nm)
set -euo pipefail
bin=${1:?usage: scripts/size-breakdown.sh BIN [NM]}
nm=${2:-nm}
# Plain POSIX awk (Debian's default awk is mawk: no strtonum).
"$nm" -S -C --size-sort "$bin" | awk '
  function hex(s,   i, v) {
    v = 0
    for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
    return v
  }
  # code (t) and initialised data (r, d); not .bss (b), which takes no bytes in the file
  NF >= 4 && $3 ~ /^[tTrRdD]$/ {
    size = hex($2)
    name = $0
    sub(/^[0-9a-f]+ [0-9a-f]+ . /, "", name)
    sub(/^<+/, "", name)
    sub(/^&(mut )?/, "", name)
    sub(/^dyn /, "", name)
    if (($1 SUBSEP $2) in seen) next # an alias (qsort and c.stdlib.qsort): count it once
    seen[$1, $2] = 1
    if (name ~ /^(ring_core_|fiat_|p256_|ecp_nistz|nistz|x25519_|aes_nohw|gcm_|limbs_|LIMBS_|bn_|ChaCha20|poly1305|CRYPTO_|OPENSSL_|_vpaes|_bsaes|_sha|sha256_|sha512_)/) crate = "ring"
    else if (name ~ /^\.Lanon\./) crate = "(anonymous constants: strings, tables)"
    else if (index(name, "::") > 0) { crate = substr(name, 1, index(name, "::") - 1); sub(/[<\[ (].*/, "", crate) }
    else crate = "C: libc + builtins"
    if (crate == "T") crate = "(blanket impls: <T as Trait>)"
    if (crate == "") crate = "(unnamed)"
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
