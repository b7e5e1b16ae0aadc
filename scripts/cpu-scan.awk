# Finds instructions an ARMv6 (ARM1176JZF-S: ARM + Thumb-1, VFPv2) or ARMv5TE (ARM926EJ-S: ARM +
# Thumb-1, soft float) CPU does not have, in `objdump -d --no-show-raw-insn` output of a binary
# that still has its symbol table, and names the function each one is in. Used by cpu_arch_ok in
# scripts/cross-env.sh:
#
#   readelf -sW BIN | awk '$4 == "FUNC" && $7 != "UND" {print $2, $8}' | sort > funcs
#   objdump -d --no-show-raw-insn BIN > dis
#   awk -v arch=armv6 -f scripts/cpu-scan.awk funcs dis
# (funcs: "ADDRESS NAME" lines sorted by address; readelf pads the addresses to one width.)
# Plain POSIX awk (Debian's default is mawk: no strtonum, no asort).
#
# Why a list per function and not "no such instruction anywhere": ring carries NEON assembly
# (SHA-2, ChaCha20, Poly1305, GHASH, AES, X25519, Montgomery multiplication) that it calls only
# after getauxval(AT_HWCAP) reports NEON, and musl's ARM atomics and thread pointer have ARMv7 /
# CP15 variants it selects at start from AT_HWCAP. Those functions are DISPATCHED (printed with
# their counts, not a failure). Any other function holding such an instruction is a FAULT: the
# CPU would raise SIGILL when it runs. The mapping symbols ($a/$t/$d) of an unstripped binary
# make objdump print literal pools as data, so constants are not decoded as instructions.
#
# Output: "DISPATCHED <count> <function>" and "FAULT <count> <function> <first instruction>"
# lines, then "TOTAL <faults> <dispatched>". The caller fails when faults > 0.

BEGIN {
    split("eq ne cs cc hs lo mi pl vs vc hi ls ge lt gt le al", c, " ")
    for (i in c) cond[c[i]] = 1
    # ARMv6T2/ARMv7 additions to the ARM instruction set.
    split("movw movt bfi bfc ubfx sbfx rbit mls sdiv udiv dmb dsb isb pli", a, " ")
    for (i in a) v7[a[i]] = 1
    # ARMv6 additions (absent on ARMv5TE): exclusives, byte reversal, extends, saturation,
    # packing, SIMD within a register, dual multiplies, CPS/SRS/RFE/SETEND, UMAAL.
    split("ldrex ldrexb ldrexh ldrexd strex strexb strexh strexd clrex rev rev16 revsh " \
          "sxtb sxth sxtb16 sxtab sxtah sxtab16 uxtb uxth uxtb16 uxtab uxtah uxtab16 " \
          "sel usat ssat usat16 ssat16 pkhbt pkhtb usad8 usada8 umaal setend " \
          "smlad smladx smlsd smlsdx smuad smuadx smusd smusdx smlald smlaldx smlsld smlsldx " \
          "smmul smmulr smmla smmlar smmls smmlsr cpsie cpsid cps srsia srsdb rfeia rfedb " \
          "yield wfe wfi sev", b, " ")
    for (i in b) v6[b[i]] = 1
    # VFPv2 data-processing and transfer mnemonics (anything else starting with v is NEON or
    # VFPv3+).
    split("vadd vsub vmul vnmul vmla vmls vnmla vnmls vdiv vabs vneg vsqrt vcmp vcmpe vcvt " \
          "vcvtr vmov vmrs vmsr vldr vstr vldm vldmia vldmdb vstm vstmia vstmdb vpush vpop", f, " ")
    for (i in f) vfp2[f[i]] = 1
    nf = 0
}

# base(m, set): m without a condition suffix if that is in set, else "".
function base(m, set,   b) {
    if (m in set) return m
    b = substr(m, 1, length(m) - 2)
    if (length(m) > 2 && (substr(m, length(m) - 1) in cond) && (b in set)) return b
    return ""
}

# newer(mn, ops): why the instruction is newer than the target CPU, or "".
function newer(mn, ops,   m, t, b) {
    m = mn
    t = ""
    if (index(m, ".") > 0) {
        t = substr(m, index(m, "."))
        m = substr(m, 1, index(m, ".") - 1)
    }
    if (base(m, v7) != "") return "ARMv7"
    if (substr(m, 1, 1) == "v") {
        if (arch == "armv5te") return "VFP/NEON (soft-float target)"
        b = base(m, vfp2)
        if (b == "") return "NEON"
        if (ops ~ /(^|[^a-z0-9_])q[0-9]/) return "NEON (q register)"
        if (ops ~ /(^|[^a-z0-9_])d(1[6-9]|2[0-9]|3[01])([^0-9]|$)/) return "VFPv3-D32/NEON (d16-d31)"
        if (b == "vmov" && t ~ /^\.f(32|64)$/ && ops ~ /#/) return "VFPv3 (vmov immediate)"
        if (t == "" || t ~ /^\.f(32|64)$/) return ""
        if ((b == "vcvt" || b == "vcvtr") && t ~ /^\.(f32\.f64|f64\.f32|f(32|64)\.[su]32|[su]32\.f(32|64))$/ && ops !~ /#/) return ""
        if (b == "vmov" && t == ".32" && ops ~ /\[[01]\]/) return ""
        return "NEON (" t ")"
    }
    if (arch == "armv5te") {
        if (base(m, v6) != "") return "ARMv6"
        if (m ~ /^[su](q|h)?(add|sub)(8|16)/ || m ~ /^[su](q|h)?(asx|sax|addsubx|subaddx)/) return "ARMv6 SIMD"
        if (m ~ /^mrc/ && ops ~ /cr13, cr0, \{[23]\}/) return "ARMv6K thread register"
    }
    return ""
}

# hex(s): the value of a hexadecimal string (exact below 2^53).
function hex(s,   i, v) {
    v = 0
    for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
    return v
}

# First file: "ADDRESS NAME" of every defined function, sorted by address.
FNR == NR {
    fa = hex(tolower($1))
    fa -= fa % 2 # Thumb functions have bit 0 set
    nf++
    sstart[nf] = fa
    sname[nf] = $2
    next
}

/^ *[0-9a-f]+:\t/ {
    nt = split($0, col, "\t")
    if (nt < 2) next
    mn = col[2]
    gsub(/ /, "", mn)
    ops = nt >= 3 ? col[3] : ""
    sub(/[;@].*/, "", ops)
    sub(/<.*/, "", ops)
    why = newer(mn, ops)
    if (why == "") next
    hx = col[1]
    gsub(/[ :]/, "", hx)
    addr = hex(hx)
    # binary search: the last function starting at or before addr
    lo = 1; hi = nf; at = 0
    while (lo <= hi) {
        mid = int((lo + hi) / 2)
        if (sstart[mid] <= addr) { at = mid; lo = mid + 1 } else hi = mid - 1
    }
    fn = at ? sname[at] : "(before any function)"
    hits[fn]++
    if (!(fn in first)) first[fn] = sprintf("%s: %s %s [%s]", hx, mn, ops, why)
}

END {
    faults = 0
    dispatched = 0
    for (fn in hits) {
        # ring: *_neon / *_NEON entry points and the vpaes/bsaes helpers they call; musl:
        # __a_*_v6 / __a_*_v7 atomics and __a_gettp_cp15, which __set_thread_area picks only
        # when AT_HWCAP has HWCAP_TLS (ARMv6K and later; else the kernel's kuser helpers);
        # libunwind's Registers_arm::save/restoreVFP*, run only when an unwind table names VFP
        # registers: d16-d31 for the VFPv2 target, any for the soft-float one, never the case.
        if (fn ~ /(_neon|_NEON|neon2_|vpaes|bsaes)/ || fn ~ /^__a_[a-z]+_(v6|v7|cp15)$/ ||
            fn ~ /^_ZN9libunwind13Registers_arm[0-9]+(save|restore)VFP/) {
            printf "DISPATCHED %d %s\n", hits[fn], fn
            dispatched += hits[fn]
        } else {
            printf "FAULT %d %s %s\n", hits[fn], fn, first[fn]
            faults += hits[fn]
        }
    }
    printf "TOTAL %d %d\n", faults, dispatched
}
