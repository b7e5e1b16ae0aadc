# Sourced by scripts/kernel-test.sh: the sealed token store (issue 20) on Debian's 6.1 kernel,
# whose TPM TIS driver is built in, with Debian's swtpm behind QEMU's `-device tpm-tis` and the
# store on an ext4 disk image (virtio-blk) that outlives each boot.
#
#   h  boot 1 (disk, TPM A): pair; the store is sealed by the TPM. Boot 2 (same disk, same TPM
#      state): `token` prints the same token, no new pairing, status says tpm2. Boot 3 (same
#      disk, a fresh TPM B: another board, or a cleared TPM): `token` exits 4 naming the cause;
#      the agent shows a fresh code (its QR decoded from the screen), pairs and seals with TPM B
#   i  no TPM: pair finishes and says the refresh token is not protected by hardware, with what
#      each sealer answered on this kernel (no /dev/tpmrm0; add_key(trusted): ENODEV); status too
#   j  (only with KERNEL_TEST_TRUSTED=1) the `kernel` sealer: Linux trusted keys with the TPM as
#      trust source, on a small 6.12 kernel built by scripts/build-trusted-kernel.sh (Debian's
#      kernels have no CONFIG_TRUSTED_KEYS; scripts/test.sh builds it first, ~4 min cold).
#      Boot 1: pair with seal = "kernel" and DPoP on (the test server requires proofs), the DPoP
#      key sealed with the tokens, `api` with a proof the server verifies; boot 2 (same disk and
#      TPM): the same token and the same DPoP key; boot 3 (another TPM): exit 4 naming the cause
#
# Each boot of h and i is the vesafb display of scenario c (vga=791: no display module). Needs
# swtpm and mke2fs on the host (Debian: swtpm, e2fsprogs); installs swtpm when run as root.

[ "${KERNEL_TEST_TRUSTED:-0}" != 1 ] || ALL_SCENARIOS+=(j)

# The modules of the disk, dependencies first (their .deb paths are extracted with the kernel).
seal_modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
    virtio_blk crc32c_generic crc16 mbcache jbd2 ext4)
seal_module_globs=('./lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/drivers/block/virtio_blk.ko'
    './lib/modules/*/kernel/fs/ext4/*' './lib/modules/*/kernel/fs/jbd2/*'
    './lib/modules/*/kernel/fs/mbcache.ko' './lib/modules/*/kernel/lib/crc16.ko'
    './lib/modules/*/kernel/crypto/crc32c_generic.ko')

seal_scenario_title() {
    case "$1" in
        h) echo "TPM-sealed store: reboot keeps it; a fresh TPM means exit 4 and a fresh code" ;;
        i) echo "no TPM: pair and status say the tokens are not protected" ;;
        j) echo "kernel sealer (trusted keys, TPM source) on a built 6.12 kernel" ;;
    esac
}

seal_install_tools() {
    command -v swtpm >/dev/null 2>&1 && return 0
    [ "$(id -u)" = 0 ] || die "missing swtpm: run as root or apt-get install swtpm"
    note "installing swtpm (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends swtpm >/dev/null
}

# seal_initramfs ROOT: the disk modules, the configs and the guest's helpers.
seal_initramfs() {
    local root=$1 m f
    : >"$root/lib/modules/seal.order"
    for m in "${seal_modules[@]}"; do
        f=$(find "$modules_dir" -name "$m.ko" | head -1)
        [ -n "$f" ] || die "module $m.ko is not in $kernel_release"
        cp "$f" "$root/lib/modules/"
        echo "/lib/modules/$m.ko" >>"$root/lib/modules/seal.order"
    done
    mkdir -p "$root/data"
    devauth_config framebuffer /dev/fb0 |
        sed 's#^path = .*#path = "/data/devauth/tokens.json"#' >"$root/etc/devauth/seal.toml"
    printf '\n[agent]\ntoken_file = "/tmp/access_token"\npaired_screen_secs = 1\n' \
        >>"$root/etc/devauth/seal.toml"
    # Scenario j: no display (the small kernel has none), the kernel sealer, DPoP on (the test
    # server started with --dpop), so the proof key is sealed with the tokens too.
    sed -e 's#^backend = .*#backend = "none"#' -e '/^device = /d' \
        -e 's#^path = .*#path = "/data/devauth/tokens.json"\nseal = "kernel"\ntrusted_key_options = "keyhandle=0x81000001"#' \
        -e 's#^revocation_endpoint = .*#&\ndpop = "on"#' \
        "$root/etc/devauth/fb.toml" >"$root/etc/devauth/trusted.toml"
    cat >"$root/bin/mount-data" <<'EOF'
#!/bin/sh
# The disk image at /data on virtio-blk: ext4 with Debian's kernel (its modules loaded first),
# ext2 with the trusted-keys kernel (built in; ext2 compiles in a fraction of ext4's time).
[ -b /dev/vda ] || for m in $(cat /lib/modules/seal.order); do insmod "$m" || exit 1; done
n=0
until [ -b /dev/vda ]; do
    n=$((n + 1)); [ $n -lt 50 ] || { echo "no /dev/vda"; exit 1; }; sleep 0.1
done
if grep -qw ext4 /proc/filesystems; then mount -t ext4 /dev/vda /data; else mount -t ext2 /dev/vda /data; fi
EOF
    chmod +x "$root/bin/mount-data"
}

seal_swtpm_pid=""

# seal_wait_socket PATH: until swtpm listens there (5 s at most).
seal_wait_socket() {
    local n=0
    until [ -S "$1" ]; do
        n=$((n + 1))
        [ $n -lt 100 ] || return 1
        sleep 0.05
    done
}

# seal_boot NAME TPM_STATE DISK: a boot with the vesafb display, the TPM whose state is in
# TPM_STATE ("" for none) and DISK ("" for none) mounted at /data; the clock set.
seal_boot() {
    local name=$1 state=$2 disk=$3 args=() sock
    if [ -n "$state" ]; then
        # Short socket path: a Unix socket path has at most 107 bytes.
        sock=$(mktemp -u /tmp/kt-swtpm.XXXXXX)
        swtpm socket --tpm2 --tpmstate "dir=$state" --ctrl "type=unixio,path=$sock" \
            --terminate --log "file=$cache/vm-$name.swtpm.log" >/dev/null 2>&1 &
        seal_swtpm_pid=$!
        seal_wait_socket "$sock" || { fail "swtpm did not start"; return 1; }
        args+=(-chardev "socket,id=chrtpm,path=$sock" -tpmdev emulator,id=tpm0,chardev=chrtpm
            -device tpm-tis,tpmdev=tpm0)
    fi
    [ -z "$disk" ] || args+=(-drive "file=$disk,if=virtio,format=raw")
    boot "$name" "vga=791" "${args[@]}" || return 1
    set_guest_clock "$(date +%s)" || return 1
    if [ -n "$disk" ]; then
        local out
        out=$(ctl 60 mount-data) || fail "mounting the disk: $out" || return 1
    fi
}

# The disk unmounted (everything on it), QEMU and swtpm stopped.
seal_power_off() {
    ctl 20 "kill \$(cat /tmp/pair.pid 2>/dev/null) 2>/dev/null; sleep 0.5; sync; umount /data" \
        >/dev/null || true
    shutdown_vm
    seal_stop_swtpm
}

seal_stop_swtpm() {
    if [ -n "$seal_swtpm_pid" ]; then
        kill "$seal_swtpm_pid" 2>/dev/null && wait "$seal_swtpm_pid" 2>/dev/null
    fi
    seal_swtpm_pid=""
    return 0
}

# The guest's `devauth -c seal.toml ARGS`: its stdout, then a line "rc=N", then its stderr.
seal_devauth() {
    ctl 20 "devauth -c /etc/devauth/seal.toml $* 2>/tmp/cmd.err; echo rc=\$?; cat /tmp/cmd.err"
}

scenario_h() {
    local rc=0
    seal_scenario_h || rc=$?
    seal_stop_swtpm
    return $rc
}

seal_scenario_h() {
    local disk=$cache/seal-disk.img tpm_a=$cache/seal-tpm-a tpm_b=$cache/seal-tpm-b out token1
    rm -rf "$disk" "$tpm_a" "$tpm_b" && mkdir -p "$tpm_a" "$tpm_b"
    mke2fs -q -t ext4 -F "$disk" 32M >/dev/null || fail "mke2fs failed" || return 1

    # Boot 1: pair; sealed by TPM A.
    seal_boot h1 "$tpm_a" "$disk" || return 1
    ctl 5 "test -c /dev/tpmrm0" >/dev/null || fail "no /dev/tpmrm0 in the guest" || return 1
    start_pairing /etc/devauth/seal.toml || return 1
    wait_code || return 1
    approve_and_finish || return 1
    out=$(ctl 5 "cat /tmp/pair.err")
    grep -q "the key held by the TPM (tpm2)" <<<"$out" ||
        fail "pair did not seal with the TPM: $out" || return 1
    out=$(seal_devauth token)
    grep -q '^rc=0$' <<<"$out" || fail "token after pairing: $out" || return 1
    token1=$(head -1 <<<"$out")
    seal_power_off

    # Boot 2: the same disk and TPM state: the same token, no pairing.
    seal_boot h2 "$tpm_a" "$disk" || return 1
    out=$(seal_devauth token)
    grep -q '^rc=0$' <<<"$out" || fail "token after a reboot: $(tail -n +2 <<<"$out")" || return 1
    [ "$(head -1 <<<"$out")" = "$token1" ] || fail "token after a reboot is another token" ||
        return 1
    out=$(seal_devauth status)
    grep -q "held by the TPM (tpm2)" <<<"$out" || fail "status after a reboot: $out" || return 1
    seal_power_off

    # Boot 3: the same disk, a fresh TPM.
    seal_boot h3 "$tpm_b" "$disk" || return 1
    out=$(seal_devauth token)
    grep -q '^rc=4$' <<<"$out" || fail "token with a fresh TPM (want exit 4): $out" || return 1
    grep -q "the tokens were sealed on another device" <<<"$out" ||
        fail "token with a fresh TPM does not name the cause: $out" || return 1
    out=$(ctl 30 start-server) || fail "test server did not start: $out" || return 1
    out=$(ctl 10 "start-pair /etc/devauth/seal.toml run") || fail "agent did not start: $out" ||
        return 1
    out=$(ctl 60 "wait-event 60 pairing_required") ||
        fail "the agent did not ask for a pairing: $out" || return 1
    wait_code || return 1
    qr_shows code "$uri_complete" || return 1
    out=$(ctl 10 "approve $user_code") || fail "approve failed: $out" || return 1
    out=$(ctl 40 "wait-event 40 paired") || fail "the agent did not pair again: $out" || return 1
    out=$(seal_devauth status)
    grep -q "held by the TPM (tpm2)" <<<"$out" || fail "status after pairing again: $out" ||
        return 1
    seal_power_off
    detail="3 boots: sealed, same token after a reboot, exit 4 + a fresh code with another TPM"
}

scenario_i() {
    local out
    seal_boot i "" "" || return 1
    ctl 5 "! test -e /dev/tpmrm0" >/dev/null || fail "a TPM without -tpmdev?" || return 1
    start_pairing /etc/devauth/fb.toml || return 1
    wait_code || return 1
    approve_and_finish || return 1
    out=$(ctl 5 "cat /tmp/pair.err")
    grep -q "NOT protected by hardware" <<<"$out" || fail "pair said nothing: $out" || return 1
    grep -q "tpm2: no TPM at /dev/tpmrm0" <<<"$out" || fail "no TPM reason: $out" || return 1
    grep -q "add_key(trusted, new): No such device" <<<"$out" ||
        fail "no trusted-keys reason: $out" || return 1
    out=$(ctl 10 "devauth -c /etc/devauth/fb.toml status")
    grep -q "protection:    NOT protected by hardware" <<<"$out" || fail "status: $out" ||
        return 1
    detail="pair and status: not protected (no /dev/tpmrm0; add_key(trusted): ENODEV)"
}

# seal_provision_tpm STATE: a persistent ECC P-256 storage key at 0x81000001 in the TPM whose
# state is in STATE, as a TPM 2.0 trust source of trusted keys needs (what `tpm2_createprimary
# -C o` + `tpm2_evictcontrol -C o … 0x81000001` do), sent as raw commands to a swtpm socket.
seal_provision_tpm() {
    local state=$1 sock pid
    sock=$(mktemp -u /tmp/kt-swtpm.XXXXXX)
    swtpm socket --tpm2 --tpmstate "dir=$state" --server "type=unixio,path=$sock" \
        --flags not-need-init,startup-clear >/dev/null 2>&1 &
    pid=$!
    seal_wait_socket "$sock" || { kill "$pid"; return 1; }
    python3 - "$sock" <<'PY' || { kill "$pid"; wait "$pid" 2>/dev/null; return 1; }
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def call(code, body):
    s.sendall(struct.pack(">HII", 0x8002, 10 + len(body), code) + body)
    tag, size, rc = struct.unpack(">HII", s.recv(10, socket.MSG_WAITALL))
    rest = s.recv(size - 10, socket.MSG_WAITALL) if size > 10 else b""
    if rc:
        sys.exit("TPM command 0x%x: rc 0x%x" % (code, rc))
    return rest
pw = struct.pack(">IIHBH", 9, 0x40000009, 0, 0, 0)
owner = struct.pack(">I", 0x40000001)
template = bytes.fromhex("0023000b00030472000000060080004300100003001000000000")
body = owner + pw + struct.pack(">HHH", 4, 0, 0) + struct.pack(">H", len(template)) + template
handle = call(0x131, body + struct.pack(">HI", 0, 0))[:4]  # TPM2_CreatePrimary
call(0x120, owner + handle + pw + struct.pack(">I", 0x81000001))  # TPM2_EvictControl
PY
    kill "$pid"; wait "$pid" 2>/dev/null
    return 0
}

scenario_j() {
    local rc=0
    seal_scenario_j || rc=$?
    seal_stop_swtpm
    return $rc
}

seal_scenario_j() {
    local disk=$cache/trusted-disk.img tpm_c=$cache/trusted-tpm-c tpm_d=$cache/trusted-tpm-d
    local out token1 debian=$vmlinuz
    [ -e "$cache/trusted/bzImage" ] || fail "no $cache/trusted/bzImage: run scripts/build-trusted-kernel.sh" || return 1
    rm -rf "$disk" "$tpm_c" "$tpm_d" && mkdir -p "$tpm_c" "$tpm_d"
    mke2fs -q -t ext2 -F "$disk" 32M >/dev/null || fail "mke2fs failed" || return 1
    seal_provision_tpm "$tpm_c" && seal_provision_tpm "$tpm_d" ||
        fail "could not put a storage key at 0x81000001" || return 1
    vmlinuz=$cache/trusted/bzImage
    seal_trusted_boots "$disk" "$tpm_c" "$tpm_d"
    rc=$?
    vmlinuz=$debian
    return $rc
}

seal_trusted_boots() {
    local disk=$1 tpm_c=$2 tpm_d=$3 out token1 jwk1 cfg=/etc/devauth/trusted.toml
    local userinfo=http://127.0.0.1:$guest_port/userinfo
    seal_boot j1 "$tpm_c" "$disk" || return 1
    detail="$(ctl 5 'uname -r')"
    start_pairing "$cfg" --dpop || return 1
    wait_code || return 1
    approve_and_finish || return 1
    out=$(ctl 5 "cat /tmp/pair.err")
    grep -q "the key held by the kernel's trusted keys (kernel)" <<<"$out" ||
        fail "pair did not seal with trusted keys: $out" || return 1
    grep -q "DPoP key sealed with the tokens (AES-256-GCM, the key held by the kernel's trusted keys" \
        <<<"$out" || fail "pair did not seal the DPoP key with trusted keys: $out" || return 1
    out=$(ctl 20 "devauth -c $cfg token 2>/tmp/cmd.err; echo rc=\$?; cat /tmp/cmd.err")
    grep -q '^rc=0$' <<<"$out" || fail "token after pairing: $out" || return 1
    token1=$(head -1 <<<"$out")
    # The test server checks the proof's signature, htm/htu, ath and that the token is bound to
    # this key's thumbprint: the key unsealed through the kernel's trusted key signs for real.
    out=$(ctl 20 "devauth -c $cfg api $userinfo >/tmp/api.out 2>/tmp/cmd.err; echo rc=\$?; cat /tmp/cmd.err")
    grep -q '^rc=0$' <<<"$out" || fail "api with a DPoP proof: $out" || return 1
    jwk1=$(seal_proof_jwk "$cfg" "$userinfo") || return 1
    seal_power_off

    seal_boot j2 "$tpm_c" "$disk" || return 1
    out=$(ctl 20 "devauth -c $cfg token 2>/tmp/cmd.err; echo rc=\$?; cat /tmp/cmd.err")
    grep -q '^rc=0$' <<<"$out" || fail "token after a reboot: $(tail -n +2 <<<"$out")" || return 1
    [ "$(head -1 <<<"$out")" = "$token1" ] || fail "token after a reboot is another token" ||
        return 1
    out=$(seal_proof_jwk "$cfg" "$userinfo") || return 1
    [ "$out" = "$jwk1" ] || fail "the DPoP key after a reboot is another key: $out, was $jwk1" ||
        return 1
    seal_power_off

    seal_boot j3 "$tpm_d" "$disk" || return 1
    out=$(ctl 20 "devauth -c $cfg token 2>/tmp/cmd.err; echo rc=\$?; cat /tmp/cmd.err")
    grep -q '^rc=4$' <<<"$out" || fail "token with another TPM (want exit 4): $out" || return 1
    grep -q "the tokens were sealed on another device" <<<"$out" ||
        fail "token with another TPM does not name the cause: $out" || return 1
    seal_power_off
    detail="kernel $detail: sealed by trusted keys (tokens and DPoP key), api with a proof, same token and key after a reboot, exit 4 with another TPM"
}

# seal_proof_jwk CONFIG URL: the public key (its "x" and "y") in the header of the proof that
# `devauth token --dpop-proof GET URL` prints in the guest (its second line), decoded on the host.
seal_proof_jwk() {
    local out proof
    out=$(ctl 20 "devauth -c $1 token --dpop-proof GET $2 2>/tmp/cmd.err; echo rc=\$?; cat /tmp/cmd.err")
    grep -q '^rc=0$' <<<"$out" || fail "token --dpop-proof: $out" || return 1
    proof=$(sed -n 2p <<<"$out") # line 1: the token, line 2: the proof
    python3 -c '
import base64, json, sys
head = sys.argv[1].split(".")[0]
jwk = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["jwk"]
print(jwk["x"], jwk["y"])' "$proof" || fail "no jwk in the proof's header: $out"
}
