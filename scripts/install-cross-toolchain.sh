#!/usr/bin/env bash
# Installs, on Debian 12 (bookworm) amd64, everything needed to build devauth's release binaries
# (scripts/cross-env.sh: glibc 2.17 gnu, static musl, ARMv6, ARMv5TE) without Docker and to run
# them here, using Debian's archive and PyPI only (CI runs it as root):
#   - Debian's Rust 1.85 (rustc-web, cargo-web, libstd-rust-web-dev) and rust-web-src (the std
#     source -Zbuild-std compiles), pinned and held: 1.85 is both the project's MSRV and the
#     version whose ARM std Debian ships;
#   - ziglang and cargo-zigbuild from PyPI, pinned, in a venv (DEVAUTH_ZIG_VENV, default
#     /opt/devauth-cross/venv): zig is the C compiler and linker of every release build;
#   - that std for armv7-unknown-linux-gnueabihf and aarch64-unknown-linux-gnu, unpacked from the
#     libstd-rust-web-dev:armhf / :arm64 packages into /usr/lib/rustlib (installing them with apt
#     fails on a libxml2 multiarch conflict, and only their rlibs are needed);
#   - gcc and binutils for arm-linux-gnueabihf and aarch64-linux-gnu: binutils read the ARM
#     binaries (glibc floor, CPU attributes, strip), the armhf/arm64 glibc runs the gnu ones
#     under qemu, gcc links the install check below;
#   - qemu-user, to run the ARM binaries and tests here; `time`, for scripts/budget.sh.
# It ends by compiling a small program for armv7/aarch64 and running it under qemu, and by
# checking that zig and cargo-zigbuild answer.
#
# Re-running is cheap: apt is only called when a package is missing or at another version, and
# the std is only unpacked again when the pinned version changed.
#
# usage (as root): scripts/install-cross-toolchain.sh [--no-verify]
#   --no-verify  skip the compile-and-run check.
# env: DEVAUTH_RUST_DEB_VERSION  the Debian version to pin (default in scripts/cross-env.sh)
set -euo pipefail
# shellcheck source=scripts/cross-env.sh
. "$(dirname "$0")/cross-env.sh"

verify=1
for arg; do
  case $arg in
    --no-verify) verify=0 ;;
    -h | --help)
      usage "$0"
      exit 0
      ;;
    *)
      echo "unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

say() { printf '[install] %s\n' "$*"; }
die() {
  printf '[install] error: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (apt-get and /usr/lib/rustlib)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "the host must be amd64"
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release ||
  say "warning: not Debian 12 (bookworm); the pinned Rust version may not exist here"

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -o Acquire::Retries=3 -o Dpkg::Use-Pty=0)
V=$DEVAUTH_RUST_DEB_VERSION
rust_pkgs=(rustc-web cargo-web libstd-rust-web-dev rust-web-src)
tool_pkgs=(gcc gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu libc6-dev-armhf-cross
  libc6-dev-arm64-cross qemu-user time ca-certificates file python3-venv)
cross_targets=(armv7 aarch64)

# Installed version of a package, empty when it is not installed.
installed() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '$3 == "installed" {print $4}'; }
# Whether apt can currently fetch package $1 at version $2.
available() { apt-cache madison "$1" 2>/dev/null | awk -F' *[|] *' -v v="$2" '$2 == v {ok = 1} END {exit !ok}'; }

# apt-get update, tolerating errors as long as what we need can be resolved afterwards: the
# armhf/arm64 indices of bookworm-security are sometimes out of step with the mirror ("File has
# unexpected size"), which makes apt-get update fail without affecting the packages used here.
apt_update() {
  apt-get "${apt_opts[@]}" update || say "apt-get update reported errors; checking whether they matter"
  local p arch
  for p in "${rust_pkgs[@]}"; do available "$p" "$V" || die "apt cannot find $p=$V"; done
  for arch in armhf arm64; do
    available "libstd-rust-web-dev:$arch" "$V" || die "apt cannot find libstd-rust-web-dev:$arch=$V"
  done
  updated=1
}
updated=0

# 1. foreign architectures, so that apt knows the armhf/arm64 std packages
for arch in armhf arm64; do
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    say "dpkg --add-architecture $arch"
    dpkg --add-architecture "$arch"
  fi
done

# 2. host packages (only touch apt when something is missing or at the wrong version)
missing=()
for p in "${rust_pkgs[@]}"; do [ "$(installed "$p")" = "$V" ] || missing+=("$p=$V"); done
for p in "${tool_pkgs[@]}"; do [ -n "$(installed "$p")" ] || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt_update
  say "apt-get install ${missing[*]}"
  apt-mark unhold "${rust_pkgs[@]}" >/dev/null 2>&1 || true
  apt-get "${apt_opts[@]}" install -y --no-install-recommends --allow-downgrades \
    "${missing[@]}"
else
  say "packages already installed (Rust $V and its source, cross gcc, qemu-user, time)"
fi
# An `apt-get upgrade` to bookworm-security's newer rustc-web would leave the unpacked ARM std
# behind at 1.85 (error E0514 on every build) and the std source mismatched: hold the packages.
apt-mark hold "${rust_pkgs[@]}" >/dev/null

want=${V%%+*} # 1.85.0
got=$(/usr/bin/rustc --version | awk '{print $2}')
[ "$got" = "$want" ] || die "/usr/bin/rustc is $got, expected $want"

# 3. the Rust std for each ARM target, unpacked from Debian's foreign-architecture package
for name in "${cross_targets[@]}"; do
  target_setup "$name"
  T_DEBARCH=armhf
  [ "$name" != aarch64 ] || T_DEBARCH=arm64
  dest=/usr/lib/rustlib/$T_TRIPLE
  pkg=libstd-rust-web-dev:$T_DEBARCH=$V
  if dpkg -S "$dest" >/dev/null 2>&1; then
    say "$dest belongs to an installed package; leaving it alone"
    continue
  fi
  if [ "$(cat "$dest/.devauth-from-deb" 2>/dev/null)" = "$pkg" ] &&
    compgen -G "$dest/lib/libstd-*.rlib" >/dev/null; then
    say "$T_TRIPLE std already unpacked ($pkg)"
    continue
  fi
  # a freshly added architecture has no package index yet
  available "libstd-rust-web-dev:$T_DEBARCH" "$V" || [ "$updated" = 1 ] || apt_update
  say "unpacking $T_TRIPLE std from $pkg"
  tmp=$(mktemp -d)
  # apt downloads as the unprivileged _apt user, which cannot write into a root-owned mktemp dir
  (cd "$tmp" && apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root download "$pkg")
  dpkg-deb -x "$tmp"/libstd-rust-web-dev_*_"$T_DEBARCH".deb "$tmp/root"
  compgen -G "$tmp/root$dest/lib/libstd-*.rlib" >/dev/null || die "$pkg holds no $T_TRIPLE std"
  rm -rf "$dest.new"
  cp -a "$tmp/root$dest" "$dest.new"
  echo "$pkg" >"$dest.new/.devauth-from-deb"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
  rm -rf "$tmp"
done

# 4. zig and cargo-zigbuild from PyPI, pinned, in their own venv (not the system's Python)
venv=$DEVAUTH_ZIG_VENV
if [ "$(cat "$venv/.devauth-pins" 2>/dev/null)" = "${DEVAUTH_ZIG_PINS[*]}" ] &&
  [ -x "$venv/bin/cargo-zigbuild" ]; then
  say "zig venv already at ${DEVAUTH_ZIG_PINS[*]} ($venv)"
else
  say "pip install ${DEVAUTH_ZIG_PINS[*]} into $venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${DEVAUTH_ZIG_PINS[@]}"
  echo "${DEVAUTH_ZIG_PINS[*]}" >"$venv/.devauth-pins"
fi
[ -f /usr/lib/rustlib/src/rust/library/Cargo.lock ] ||
  die "rust-web-src installed no std source at /usr/lib/rustlib/src/rust/library"

# 5. prove that each target compiles, links and runs
if [ "$verify" = 1 ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cat >"$tmp/probe.rs" <<'EOF'
fn main() {
    let n: u64 = std::env::args().count() as u64 * 21;
    println!("{} {}-bit {}", std::env::consts::ARCH, usize::BITS, n * 2);
}
EOF
  use_toolchain debian
  for name in "${cross_targets[@]}"; do
    target_setup "$name"
    tc=debian
    "${RUSTC_CMD[@]}" --edition 2021 -O --target "$T_TRIPLE" -C "linker=$T_GNU-gcc" \
      "$tmp/probe.rs" -o "$tmp/probe-$name"
    # shellcheck disable=SC2086 # T_RUNNER is a command prefix
    out=$($T_RUNNER "$tmp/probe-$name")
    case $T_TRIPLE in
      aarch64-*) expect="aarch64 64-bit 42" ;;
      *) expect="arm 32-bit 42" ;;
    esac
    [ "$out" = "$expect" ] || die "$T_TRIPLE ($tc): probe printed '$out', expected '$expect'"
    say "ok: $T_TRIPLE ($tc toolchain) runs under ${T_RUNNER%% *}: $out"
  done
  say "ok: zig $("$venv/bin/python" -m ziglang version), $("$venv/bin/cargo-zigbuild" --version)"
fi

say "done: $(/usr/bin/rustc --version), $(/usr/bin/cargo --version), $(qemu-arm --version | head -n 1)"
