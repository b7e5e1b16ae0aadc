#!/usr/bin/env bash
# The real-kernel test: devauth's pairing screen on Debian's own kernel, without hardware.
#
# Boots Debian 12's linux-image-amd64 (6.1) under qemu-system-x86_64 (TCG; KVM hangs on these
# machines) with a tiny initramfs: busybox, devauth and the loopback test server (release
# builds from this tree), the bochs-drm modules and a config with backend = "framebuffer",
# device = "/dev/fb0" and no geometry overrides. A second serial port (a unix socket) is the
# control channel to a shell in the guest; the QEMU monitor (another unix socket) takes
# screendumps, which examples/screendump.rs decodes on the host with rqrr, as a phone would.
#
# Scenarios (each its own boot):
#   a  1280x800 32 bpp bochs-drm fbdev (-vga std): the QR is verification_uri_complete; approve
#      through the test server inside the guest; pair ends "paired" with exit 0
#   b  640x480 (-device VGA,edid=on,xres=640,yres=480): the same
#   c  vesafb 1024x768 16 bpp RGB565 (vga=791, no bochs module): the same
#   d  clock at 1970: waiting_for_clock, no QR on the screen; the date set through the control
#      channel: clock_set, then the code and its QR; pairing finishes
#   e  console: pair stopped (SIGSTOP) while the code is shown, so only the console can change
#      the screen: four dumps 150 ms apart must be identical (a blinking cursor differs) with only
#      background in the first character column (the cursor's, top-left on a clear console),
#      and text written to /dev/tty1 must not change the screen
#   f  SIGTERM to pair while the code is shown: afterwards no QR on the screen, exit 143, and
#      text written to /dev/tty1 shows (the console is given back)
#   g  DRM backend (backend = "drm", /dev/dri/card0, bochs with fbdev_emulation=0): as a;
#      SKIP when this devauth build does not know the drm backend
#   h  the sealed token store with a TPM (swtpm behind -device tpm-tis) over three boots of one
#      ext4 disk: sealed; the same token after a reboot; exit 4 and a fresh code with another TPM
#   i  no TPM: pair and status say the refresh token is not protected by hardware
#      (h and i: scripts/kernel-test-seal.sh)
#
# Downloads only Debian packages (apt-get): the kernel .deb and busybox-static into the cache
# (target/kernel-test/debs, reused offline), and, when missing and run as root, installs
# qemu-system-x86, socat, cpio, kmod and swtpm. Screendumps land in target/kernel-test/screens/ as
# PPM (what QEMU writes) and PNG.
#
# Usage: scripts/kernel-test.sh [--only LIST] [--expect-fail LIST] [--timeout SECS] [--devauth BIN]
#                               [--no-kernel]
#   --only a,b,c        run only these scenarios (default all: a,b,c,d,e,f,g,h,i, and j with
#                       KERNEL_TEST_TRUSTED=1)
#   --expect-fail e,f   these may FAIL without failing the run (features not merged yet); the
#                       table still says FAIL, and says so when one of them passes
#   --timeout SECS      bound on the whole run (default 900); a scenario's waits are bounded too
#   --devauth BIN       boot this devauth binary (an x86_64 build, e.g. the static musl release
#                       target/x86_64-unknown-linux-musl/release/devauth that CI's cross part
#                       built) instead of building target/release/devauth here
#   --no-kernel         do nothing and exit 0 (CI switch; also KERNEL_TEST=0)
# Exit: 0 when every scenario passed or was skipped (or failed and was expected to), 1 when one
# failed, 2 bad usage or a missing tool, 124 the time bound passed.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin   # modinfo, dpkg-deb

ALL_SCENARIOS=(a b c d e f g h i)
cache=${KERNEL_TEST_CACHE:-target/kernel-test}
screens=$cache/screens
guest_port=8765

expect_fail=""
time_bound=900
given_devauth=""

# The sealed-store scenarios (h, i; j with KERNEL_TEST_TRUSTED=1, which it adds to the list).
# shellcheck source=scripts/kernel-test-seal.sh
. "$(dirname "$self")/kernel-test-seal.sh"
only=${ALL_SCENARIOS[*]}

usage() { sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
note() { printf '%s\n' "kernel-test: $*" >&2; }
die() { note "$*"; exit 2; }

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --only) only=${2:?--only needs a list}; shift ;;
            --expect-fail) expect_fail=${2?--expect-fail needs a list (may be "")}; shift ;;
            --timeout) time_bound=${2:?--timeout needs seconds}; shift ;;
            --devauth) given_devauth=${2:?--devauth needs a binary}; shift ;;
            --no-kernel) echo "kernel-test: skipped (--no-kernel)"; exit 0 ;;
            -h|--help) usage ;;
            *) note "unknown argument: $1"; usage ;;
        esac
        shift
    done
    only=${only//,/ }
    expect_fail=${expect_fail//,/ }
    local s
    for s in $only $expect_fail; do
        [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario: $s (${ALL_SCENARIOS[*]})"
    done
}

# The whole run under `timeout`: the script runs itself once more inside it.
bound_the_run() {
    if [ -z "${KERNEL_TEST_BOUNDED:-}" ] && [ "$time_bound" != 0 ]; then
        KERNEL_TEST_BOUNDED=1 exec timeout -k 15 "$time_bound" "$self" "$@"
    fi
}

# ---------------------------------------------------------------------------------------------
# Step 1: tools and downloads (Debian packages only).
# ---------------------------------------------------------------------------------------------

install_missing_tools() {
    local missing=() tool pkg
    for tool in qemu-system-x86_64:qemu-system-x86 socat:socat cpio:cpio modinfo:kmod; do
        pkg=${tool#*:}
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run as root or apt-get install them"
    note "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# apt-get download PACKAGE into the cache unless a .deb of it is already there.
download_deb() {
    local pkg=$1
    mkdir -p "$cache/debs"
    if ! compgen -G "$cache/debs/${pkg}_*.deb" >/dev/null; then
        note "downloading $pkg (apt-get download)"
        (cd "$cache/debs" && { apt-get download -q "$pkg" 2>/dev/null ||
            { apt-get update -qq && apt-get download -q "$pkg"; }; }) >&2
    fi
    compgen -G "$cache/debs/${pkg}_*.deb" | sort -V | tail -1
}

# Debian's current 6.1 kernel (the package linux-image-amd64 points to) and busybox-static,
# unpacked once into the cache.
fetch_kernel_and_busybox() {
    local kernel_pkg deb
    kernel_pkg=$(compgen -G "$cache/debs/linux-image-6.1.*-amd64_*.deb" | sort -V | tail -1 |
        sed 's#.*/\(linux-image-[^_]*\)_.*#\1#' || true)
    if [ -z "$kernel_pkg" ]; then
        kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '/Depends: linux-image-6/ {print $2; exit}')
        [ -n "$kernel_pkg" ] || { apt-get update -qq; kernel_pkg=$(apt-cache depends \
            linux-image-amd64 | awk '/Depends: linux-image-6/ {print $2; exit}'); }
        [ -n "$kernel_pkg" ] || die "apt knows no linux-image-amd64 6.x (is this Debian 12?)"
    fi
    deb=$(download_deb "$kernel_pkg")
    if [ ! -e "$cache/kernel/.from-$(basename "$deb").2" ]; then
        rm -rf "$cache/kernel" && mkdir -p "$cache/kernel"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$cache/kernel" --wildcards \
            './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/gpu/drm/*' "${seal_module_globs[@]}"
        touch "$cache/kernel/.from-$(basename "$deb").2"
    fi
    vmlinuz=$(compgen -G "$cache/kernel/boot/vmlinuz-*" | head -1)
    modules_dir=$(compgen -G "$cache/kernel/lib/modules/*/kernel" | head -1)
    kernel_release=$(basename "$(dirname "$modules_dir")")

    deb=$(download_deb busybox-static)
    if [ ! -e "$cache/busybox/.from-$(basename "$deb")" ]; then
        rm -rf "$cache/busybox" && mkdir -p "$cache/busybox"
        dpkg-deb -x "$deb" "$cache/busybox"
        touch "$cache/busybox/.from-$(basename "$deb")"
    fi
    busybox=$cache/busybox/bin/busybox
    [ -x "$busybox" ] || die "busybox-static has no bin/busybox"
}

# ---------------------------------------------------------------------------------------------
# Step 2: the binaries (this tree) and the initramfs.
# ---------------------------------------------------------------------------------------------

# The test server and the screendump reader are debug builds: they reuse what `cargo test` built
# (seconds instead of minutes of release builds), and both are fast enough that way (a QR decode
# of a 1280x800 dump takes about 0.3 s).
build_binaries() {
    if [ -n "$given_devauth" ]; then
        [ -x "$given_devauth" ] || die "--devauth $given_devauth: no such executable"
        devauth_bin=$given_devauth
    else
        note "building devauth (release)"
        cargo build --release --locked --quiet --all-features -p devauth
        devauth_bin=target/release/devauth
    fi
    note "devauth under test: $devauth_bin ($(file -b "$devauth_bin" 2>/dev/null | cut -d, -f1-2))"
    note "building devauth-testserver and the screendump reader (debug)"
    cargo build --locked --quiet --all-features -p devauth -p devauth-testserver \
        --bin devauth-testserver --example screendump
    server_bin=target/debug/devauth-testserver
    screendump_bin=target/debug/examples/screendump
}

# The bochs-drm module and what it depends on, dependencies first (the .deb has no modules.dep:
# `modinfo -F depends` of each file).
bochs_modules_in_order() {
    local -A seen=()
    local order=()
    visit() {
        local name=$1 file dep
        [ -n "${seen[$name]:-}" ] && return 0
        seen[$name]=1
        file=$(find "$modules_dir" -name "$name.ko" | head -1)
        [ -n "$file" ] || die "module $name.ko is not in $kernel_release"
        for dep in $(modinfo -F depends "$file" | tr ',' ' '); do
            visit "$dep"
        done
        order+=("$file")
    }
    visit bochs
    printf '%s\n' "${order[@]}"
}

# A shared library's path and, for a symlink, the file behind it, copied to the same place.
copy_with_libs() {
    local root=$1 bin=$2 lib
    for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    cp "$bin" "$root/bin/"
}

devauth_config() {
    local backend=$1 device=$2
    cat <<EOF
# The real-kernel test's config: the loopback test server in the guest, the display found
# through the kernel's own ioctls (no width/height/format/stride overrides).
[provider]
preset = "generic"
client_id = "devauth-test"
allow_http_loopback = true
device_authorization_endpoint = "http://127.0.0.1:$guest_port/device/code"
token_endpoint = "http://127.0.0.1:$guest_port/token"
revocation_endpoint = "http://127.0.0.1:$guest_port/revoke"

[storage]
path = "/tmp/devauth/tokens.json"

[display]
backend = "$backend"
device = "$device"

[network]
connect_timeout_secs = 2
timeout_secs = 10
EOF
}

# The guest's /init and its helper commands (busybox sh).
write_guest_scripts() {
    local root=$1
    cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
ip link set lo up
stty -F /dev/ttyS1 raw -echo
echo "@@ready $(uname -r)" >/dev/ttyS1
exec /bin/control </dev/ttyS1 >/dev/ttyS1 2>&1
EOF
    cat >"$root/bin/control" <<'EOF'
#!/bin/sh
# The control channel: one "N COMMAND" a line from the host; answers "@@begin N", the output
# and "@@end N STATUS".
while IFS= read -r line; do
    n=${line%% *}
    sh -c "${line#* }" </dev/null >/tmp/.ctl-out 2>&1
    rc=$?
    echo "@@begin $n"
    cat /tmp/.ctl-out
    # The marker goes on a line of its own even after output without a newline.
    [ -n "$(tail -c 1 /tmp/.ctl-out)" ] && echo
    echo "@@end $n $rc"
done
EOF
    cat >"$root/bin/wait-for" <<'EOF'
#!/bin/sh
# wait-for SECS FILE PATTERN: until grep finds PATTERN in FILE.
n=$(($1 * 5))
while [ "$n" -gt 0 ]; do
    grep -q -- "$3" "$2" 2>/dev/null && exit 0
    sleep 0.2
    n=$((n - 1))
done
echo "after $1 s still no $3 in $2"
exit 1
EOF
    cat >"$root/bin/load-bochs" <<'EOF'
#!/bin/sh
# load-bochs [PARAM...]: the bochs-drm modules in dependency order; PARAMs go to drm_kms_helper
# (busybox insmod ignores parameters on the kernel command line).
for m in $(cat /lib/modules/bochs.order); do
    case "$m" in */drm_kms_helper.ko) insmod "$m" "$@" ;; *) insmod "$m" ;; esac || exit 1
done
EOF
    cat >"$root/bin/display-info" <<'EOF'
#!/bin/sh
if [ -e /sys/class/graphics/fb0 ]; then
    cd /sys/class/graphics/fb0 &&
        echo "fb0: $(cat name) $(tr , x <virtual_size) $(cat bits_per_pixel) bpp;"
else
    echo "no fb0;"
fi
echo "dri:" $(ls /dev/dri 2>/dev/null || echo none)
EOF
    cat >"$root/bin/start-server" <<EOF
#!/bin/sh
# start-server [FLAG...]: the test server, FLAGs added (e.g. --dpop).
devauth-testserver --port $guest_port --expires-in 1800 "\$@" >/tmp/server.out 2>/tmp/server.log &
wait-for 20 /tmp/server.out '^listening '
EOF
    cat >"$root/bin/start-pair" <<'EOF'
#!/bin/sh
# start-pair CONFIG [COMMAND]: `devauth pair --json` (or COMMAND --json, e.g. run) in the
# background; events in /tmp/pair.json, its pid in /tmp/pair.pid, its exit status in
# /tmp/pair.rc once it ends.
rm -f /tmp/pair.*
(
    devauth --config "$1" "${2:-pair}" --json >/tmp/pair.json 2>/tmp/pair.err &
    echo $! >/tmp/pair.pid
    wait $!
    echo $? >/tmp/pair.rc
) >/dev/null 2>&1 &
wait-for 5 /tmp/pair.pid .
EOF
    cat >"$root/bin/wait-event" <<'EOF'
#!/bin/sh
# wait-event SECS NAME: until pair --json has said {"event":"NAME",...}.
wait-for "$1" /tmp/pair.json "\"event\":\"$2\"" || { cat /tmp/pair.json /tmp/pair.err; exit 1; }
EOF
    cat >"$root/bin/approve" <<EOF
#!/bin/sh
# approve USER_CODE: what the person's phone does, through the test server's control API.
wget -q -O - --post-data "user_code=\$1" http://127.0.0.1:$guest_port/test/approve
EOF
    chmod +x "$root/init" "$root"/bin/*
}

build_initramfs() {
    local root=$cache/initramfs f
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc/devauth,lib/modules}
    cp "$busybox" "$root/bin/busybox"
    copy_with_libs "$root" "$devauth_bin"
    copy_with_libs "$root" "$server_bin"
    : >"$root/lib/modules/bochs.order"
    for f in $(bochs_modules_in_order); do
        cp "$f" "$root/lib/modules/"
        echo "/lib/modules/$(basename "$f")" >>"$root/lib/modules/bochs.order"
    done
    tail -1 "$root/lib/modules/bochs.order" | grep -q '/bochs.ko$' ||
        die "could not order the bochs modules of $kernel_release"
    devauth_config framebuffer /dev/fb0 >"$root/etc/devauth/fb.toml"
    devauth_config drm /dev/dri/card0 >"$root/etc/devauth/drm.toml"
    write_guest_scripts "$root"
    seal_initramfs "$root"
    (cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$cache/initramfs.cpio.gz"
}

# ---------------------------------------------------------------------------------------------
# Step 3: one guest: boot, the control channel, screendumps.
# ---------------------------------------------------------------------------------------------

vm=""          # this boot's directory (sockets, logs)
qemu_pid=""
ctl_pid=""

# boot SCENARIO KERNEL_ARGS QEMU_ARGS...: starts QEMU and waits for the guest's control shell.
boot() {
    local scenario=$1 append=$2
    shift 2
    vm=$cache/vm-$scenario
    rm -rf "$vm" && mkdir -p "$vm"
    mkfifo "$vm/ctl.in"
    # wait=on: QEMU starts the guest only once the control channel is connected, so no line is
    # lost before the host listens.
    qemu-system-x86_64 -accel tcg -m 512 -smp 1 -no-reboot -display none \
        -kernel "$vmlinuz" -initrd "$cache/initramfs.cpio.gz" \
        -append "console=ttyS0 loglevel=4 panic=-1 $append" \
        -serial "file:$vm/console.log" \
        -chardev "socket,id=ctl,path=$vm/ctl.sock,server=on,wait=on" -serial chardev:ctl \
        -monitor "unix:$vm/monitor.sock,server=on,wait=off" \
        "$@" >"$vm/qemu.log" 2>&1 &
    qemu_pid=$!
    local n=0
    until [ -S "$vm/ctl.sock" ]; do
        n=$((n + 1))
        [ $n -lt 100 ] || { cat "$vm/qemu.log" >&2; return 1; }
        sleep 0.1
    done
    socat "UNIX-CONNECT:$vm/ctl.sock" STDIO <"$vm/ctl.in" >"$vm/ctl.out" 2>"$vm/socat.log" &
    ctl_pid=$!
    exec 7>"$vm/ctl.in"
    wait_line 90 '^@@ready ' "$vm/ctl.out" || { reason="the guest did not boot in 90 s"; return 1; }
}

shutdown_vm() {
    exec 7>&- 2>/dev/null || true
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null && wait "$ctl_pid" 2>/dev/null
    qemu_pid="" ctl_pid=""
    return 0
}

# wait_line SECS REGEX FILE
wait_line() {
    local deadline=$((SECONDS + $1))
    until grep -q -- "$2" "$3" 2>/dev/null; do
        [ $SECONDS -lt "$deadline" ] || return 1
        kill -0 "$qemu_pid" 2>/dev/null || return 1
        sleep 0.1
    done
}

# ctl SECS COMMAND: runs COMMAND in the guest's shell; prints its output, returns its status.
# The sequence number lives in a file: callers often run ctl in a $(subshell).
ctl() {
    local secs=$1 cmd=$2 rc ctl_seq
    ctl_seq=$(($(cat "$vm/seq" 2>/dev/null || echo 0) + 1))
    echo "$ctl_seq" >"$vm/seq"
    printf '%s %s\n' "$ctl_seq" "$cmd" >&7
    if ! wait_line "$((secs + 2))" "^@@end $ctl_seq " "$vm/ctl.out"; then
        echo "(the guest did not finish \`$cmd\` in $secs s)"
        return 124
    fi
    sed -n "/^@@begin $ctl_seq\$/,/^@@end $ctl_seq /{/^@@/d;p}" "$vm/ctl.out"
    rc=$(sed -n "s/^@@end $ctl_seq //p" "$vm/ctl.out")
    return "$rc"
}

# dump NAME: a screendump to $screens/SCENARIO-NAME.ppm (+ .png); prints the .ppm's path.
dump() {
    local ppm=$screens/$scenario-$1.ppm n=0
    rm -f "$ppm"
    printf 'screendump %s\n' "$(realpath -m "$ppm")" |
        socat -t 5 - "UNIX-CONNECT:$vm/monitor.sock" >>"$vm/monitor.log" 2>&1
    # The monitor answers before the file may be complete: wait until it parses.
    until "$screendump_bin" size "$ppm" >/dev/null 2>&1; do
        n=$((n + 1))
        [ $n -lt 50 ] || { note "no screendump $ppm"; return 1; }
        sleep 0.1
    done
    "$screendump_bin" png "$ppm" "${ppm%.ppm}.png"
    echo "$ppm"
}

# ---------------------------------------------------------------------------------------------
# Step 4: the pieces scenarios are made of. Each returns non-zero with $reason set on failure.
# ---------------------------------------------------------------------------------------------

reason=""
detail=""
code_event=""
uri_complete=""
user_code=""

fail() { reason=$*; return 1; }

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" | head -1; }

set_guest_clock() { ctl 10 "date -u -s @$1 >/dev/null" >/dev/null || fail "date -s @$1 failed"; }

load_bochs() {
    local out
    out=$(ctl 60 "load-bochs $*") || fail "insmod bochs: $out"
}

display_info() { detail="$(ctl 10 display-info | tr '\n' ' ')"; detail=${detail% }; }

# start_pairing CONFIG [SERVER_FLAG...]
start_pairing() {
    local config=$1 out
    shift
    out=$(ctl 30 "start-server $*") || fail "test server did not start: $out" || return 1
    out=$(ctl 10 "start-pair $config") || fail "pair did not start: $out"
}

# wait_code: the code event; sets $uri_complete and $user_code.
wait_code() {
    local out
    out=$(ctl 90 "wait-event 90 code") ||
        fail "no code event: $(echo "$out" | tail -3 | tr '\n' ' ')" || return 1
    code_event=$(ctl 5 "grep '\"event\":\"code\"' /tmp/pair.json | tail -1")
    uri_complete=$(echo "$code_event" | json_field verification_uri_complete)
    user_code=$(echo "$code_event" | json_field user_code)
    [ -n "$uri_complete" ] || fail "the code event has no verification_uri_complete: $code_event"
}

# qr_shows NAME URI: screendumps (for a few seconds: the first draw takes a moment under TCG)
# until one holds a QR code decoding to URI.
qr_shows() {
    local name=$1 want=$2 ppm got="" i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        ppm=$(dump "$name") || fail "screendump failed" || return 1
        got=$("$screendump_bin" qr "$ppm")
        grep -qxF -- "$want" <<<"$got" && return 0
        sleep 0.5
    done
    fail "the QR in $ppm is ${got:-not decodable (none found)}, not $want"
}

no_qr_on() {
    local ppm=$1 got
    got=$("$screendump_bin" qr "$ppm")
    [ -z "$got" ] || fail "$2: the QR still reads $got ($ppm)"
}

approve_and_finish() {
    local out rc
    out=$(ctl 10 "approve $user_code") || fail "approve failed: $out" || return 1
    out=$(ctl 40 "wait-event 40 paired") ||
        fail "no paired event after approval: $(echo "$out" | tail -3 | tr '\n' ' ')" || return 1
    ctl 15 "wait-for 15 /tmp/pair.rc ." >/dev/null || fail "pair did not exit after paired" ||
        return 1
    rc=$(ctl 5 "cat /tmp/pair.rc")
    [ "$rc" = 0 ] || fail "pair exited $rc after pairing"
}

pair_pid() { ctl 5 "cat /tmp/pair.pid"; }

# The framebuffer scenarios' common part: the date, the display, the server, pair, the code.
fb_boot_to_code() {
    local append=$1
    shift
    boot "$scenario" "$append" "$@" || return 1
    set_guest_clock "$(date +%s)" || return 1
    if [ "$append" = "${append/vga=/}" ]; then load_bochs || return 1; fi
    display_info
    start_pairing /etc/devauth/fb.toml || return 1
    wait_code
}

# ---------------------------------------------------------------------------------------------
# Step 5: the scenarios. Each prints nothing; 0 PASS, 1 FAIL ($reason), 3 SKIP ($reason).
# ---------------------------------------------------------------------------------------------

scenario_title() {
    case "$1" in
        a) echo "1280x800 32bpp bochs-drm fbdev: QR = complete URI, paired" ;;
        b) echo "640x480 (VGA edid xres/yres): QR = complete URI, paired" ;;
        c) echo "vesafb 1024x768 16bpp (vga=791): QR = complete URI, paired" ;;
        d) echo "clock at 1970: waiting_for_clock, date set, clock_set, code" ;;
        e) echo "console: tty1 text and cursor stay off the pairing screen" ;;
        f) echo "SIGTERM to pair: the code leaves the screen" ;;
        g) echo "DRM backend (/dev/dri/card0, no fbdev emulation)" ;;
        *) seal_scenario_title "$1" ;;
    esac
}

full_pairing_on() {
    fb_boot_to_code "$@" || return 1
    qr_shows code "$uri_complete" || return 1
    approve_and_finish
}

scenario_a() { full_pairing_on ""; }

scenario_b() { full_pairing_on "" -vga none -device VGA,edid=on,xres=640,yres=480; }

scenario_c() { full_pairing_on "vga=791"; }

scenario_d() {
    local ppm out
    boot d "" || return 1
    set_guest_clock 86400 || return 1
    load_bochs || return 1
    display_info
    start_pairing /etc/devauth/fb.toml || return 1
    out=$(ctl 30 "wait-event 30 waiting_for_clock") ||
        fail "no waiting_for_clock event with the clock at 1970: $out" || return 1
    sleep 2
    ppm=$(dump waiting) || return 1
    no_qr_on "$ppm" "while waiting for the clock" || return 1
    ! ctl 5 "grep -q '\"event\":\"code\"' /tmp/pair.json" >/dev/null ||
        fail "a code was requested with the clock at 1970" || return 1
    set_guest_clock "$(date +%s)" || return 1
    out=$(ctl 30 "wait-event 30 clock_set") || fail "no clock_set after the date was set: $out" ||
        return 1
    wait_code || return 1
    qr_shows code "$uri_complete" || return 1
    approve_and_finish
}

scenario_e() {
    local pid before="" after cursor="" blink="" i ppm diff
    fb_boot_to_code "" || return 1
    qr_shows code "$uri_complete" || return 1
    # Stopped, pair cannot repair or redraw anything: whatever changes now is the console's.
    pid=$(pair_pid)
    ctl 5 "kill -STOP $pid" >/dev/null
    for i in 1 2 3 4; do
        ppm=$(dump "cursor$i") || return 1
        "$screendump_bin" cursor "$ppm" >/dev/null || cursor="$cursor $i"
        if [ -n "$before" ] && ! "$screendump_bin" diff "$before" "$ppm" >/dev/null; then
            blink="$blink $((i - 1))/$i"
        fi
        before=$ppm
        sleep 0.15
    done
    ctl 5 "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo 'KERNEL-TEST: console text on tty1'; done >/dev/tty1" >/dev/null
    sleep 1
    after=$(dump after-tty1-write) || return 1
    ctl 5 "kill -CONT $pid" >/dev/null
    diff=$("$screendump_bin" diff "$before" "$after") || true
    [ "$diff" = same ] || diff="tty1 text drew over the screen: $diff ($(basename "$after"))"
    [ -z "$cursor" ] || cursor="a cursor block in the first column of dumps$cursor"
    [ -z "$blink" ] || cursor="${cursor:-the screen blinks}${cursor:+, blinking} (dumps$blink differ)"
    case "$diff/$cursor" in
        same/) return 0 ;;
        same/*) fail "$cursor" ;;
        */) fail "$diff" ;;
        *) fail "$diff; $cursor" ;;
    esac
}

scenario_f() {
    local pid ppm rc console
    fb_boot_to_code "" || return 1
    qr_shows code "$uri_complete" || return 1
    pid=$(pair_pid)
    ctl 5 "kill -TERM $pid" >/dev/null
    ctl 15 "wait-for 15 /tmp/pair.rc ." >/dev/null || fail "pair did not exit on SIGTERM" ||
        return 1
    rc=$(ctl 5 "cat /tmp/pair.rc")
    sleep 1
    ppm=$(dump after-sigterm) || return 1
    no_qr_on "$ppm" "after SIGTERM (pair exit $rc)" || return 1
    [ "$rc" = 143 ] || fail "pair exited $rc on SIGTERM, README says 143 (128 + 15)" || return 1
    # The console must be usable again: a VT left in graphics mode would swallow this text.
    ctl 5 "echo 'KERNEL-TEST: the console after pair' >/dev/tty1" >/dev/null
    sleep 1
    console=$(dump console-after-exit) || return 1
    ! "$screendump_bin" diff "$ppm" "$console" >/dev/null ||
        fail "text written to tty1 after pair exited does not show: the VT stays in graphics mode" ||
        return 1
    detail="$detail; pair exit $rc"
    ! ctl 5 "grep -q '\"event\":\"stopped\"' /tmp/pair.json" >/dev/null ||
        detail="$detail, \"stopped\" event"
}

drm_is_built() {
    local out
    out=$("$devauth_bin" --config "$cache/initramfs/etc/devauth/drm.toml" status 2>&1) && return 0
    case "$out" in
        *display.backend*) reason="this devauth has no drm backend: ${out##*display.backend: }"
            return 1 ;;
    esac
    return 0
}

scenario_g() {
    local out
    drm_is_built || return 3
    boot g "" || return 1
    set_guest_clock "$(date +%s)" || return 1
    load_bochs fbdev_emulation=0 || return 1
    display_info
    ctl 5 "test -e /dev/dri/card0 && ! test -e /dev/fb0" >/dev/null ||
        fail "fbdev_emulation=0 should leave /dev/dri/card0 and no /dev/fb0: $detail" || return 1
    start_pairing /etc/devauth/drm.toml || return 1
    wait_code || return 1
    qr_shows code "$uri_complete" || return 1
    approve_and_finish
}

# ---------------------------------------------------------------------------------------------
# Step 6: run, and the table.
# ---------------------------------------------------------------------------------------------

results=()
failed=0

run_scenario() {
    scenario=$1
    local start=$SECONDS rc verdict
    reason="" detail="" uri_complete="" user_code=""
    note "scenario $scenario: $(scenario_title "$scenario")"
    set +e
    "scenario_$scenario"
    rc=$?
    set -e
    shutdown_vm
    case $rc in
        0) verdict=PASS ;;
        3) verdict="SKIP" ;;
        *) verdict=FAIL ;;
    esac
    if [[ " $expect_fail " == *" $scenario "* ]]; then
        case $verdict in
            FAIL) verdict="FAIL (expected)" ;;
            PASS) verdict="PASS (expected to fail: drop it from --expect-fail)" ;;
        esac
    elif [ "$verdict" = FAIL ]; then
        failed=1
    fi
    [ -n "$reason" ] && [ $rc -ne 0 ] && note "scenario $scenario: $reason"
    results+=("$(printf '%s|%s|%s|%s|%s' "$scenario" "$verdict" "$((SECONDS - start))" \
        "$(scenario_title "$scenario")" "${detail}${detail:+${reason:+ — }}${reason}")")
}

print_table() {
    local row s v t title why
    printf '\n%-2s %-15s %5s  %s\n' "" verdict secs scenario
    for row in "${results[@]}"; do
        IFS='|' read -r s v t title why <<<"$row"
        if [ ${#v} -gt 15 ]; then
            printf '%-2s %-15s %5s  %s\n%26s%s\n' "$s" "${v%% *}" "$t" "$title" "" "${v#* }"
        else
            printf '%-2s %-15s %5s  %s\n' "$s" "$v" "$t" "$title"
        fi
        [ -z "$why" ] || printf '%26s%s\n' "" "$why"
    done
    printf '\nsteps: download %ss, build %ss, initramfs %ss; screendumps in %s/\n' \
        "$t_download" "$t_build" "$t_initramfs" "$screens"
}

cleanup() { shutdown_vm; }

main() {
    parse_args "$@"
    [ "${KERNEL_TEST:-1}" != 0 ] || { echo "kernel-test: skipped (KERNEL_TEST=0)"; exit 0; }
    bound_the_run "$@"
    trap cleanup EXIT
    trap 'note "stopped: the time bound (${time_bound} s) passed or interrupted"; exit 124' TERM INT
    local t
    t=$SECONDS; install_missing_tools; seal_install_tools; fetch_kernel_and_busybox
    t_download=$((SECONDS - t))
    t=$SECONDS; build_binaries; t_build=$((SECONDS - t))
    t=$SECONDS; build_initramfs; t_initramfs=$((SECONDS - t))
    note "kernel $kernel_release, initramfs $(du -k "$cache/initramfs.cpio.gz" | cut -f1) KiB"
    rm -rf "$screens" && mkdir -p "$screens"
    local s
    for s in "${ALL_SCENARIOS[@]}"; do
        [[ " $only " == *" $s "* ]] && run_scenario "$s"
    done
    print_table
    exit $failed
}

main "$@"
