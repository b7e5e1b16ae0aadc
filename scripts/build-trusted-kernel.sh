#!/usr/bin/env bash
# Builds the small kernel with Linux trusted keys that scripts/kernel-test.sh's opt-in scenario
# j boots (KERNEL_TEST_TRUSTED=1): Debian's linux-source-6.12 (apt-get download), `make
# tinyconfig` plus scripts/kernel-trusted.config, bzImage only. Debian's packaged kernels (6.1,
# 6.12) are built without CONFIG_TRUSTED_KEYS, so the `kernel` sealer cannot run on them.
#
# The result is cached: target/kernel-test/trusted/bzImage (rebuilt when the fragment changes).
# Prints the time of each step. CI runs it (scripts/test.sh, step 4) from a cold cache every
# time: download, unpack and build take about 4 minutes on 2 cores (README, "Protecting the
# tokens").
#
# Usage: scripts/build-trusted-kernel.sh        (root installs flex, bison, libelf-dev, bc)
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${KERNEL_TEST_CACHE:-target/kernel-test}/trusted
fragment=scripts/kernel-trusted.config
note() { printf 'build-trusted-kernel: %s\n' "$*" >&2; }
mkdir -p "$cache"

stamp=$(sha256sum "$fragment" | cut -c1-16)
if [ -e "$cache/bzImage" ] && [ "$(cat "$cache/bzImage.stamp" 2>/dev/null)" = "$stamp" ]; then
    note "cached: $cache/bzImage"
    exit 0
fi

missing=()
for tool in flex:flex bison:bison bc:bc; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
[ -e /usr/include/libelf.h ] || missing+=(libelf-dev)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { note "missing ${missing[*]}: apt-get install them"; exit 2; }
    note "installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

t=$SECONDS
if ! compgen -G "$cache/linux-source-6.12_*.deb" >/dev/null; then
    note "downloading linux-source-6.12 (apt-get download)"
    (cd "$cache" && { apt-get download -q linux-source-6.12 2>/dev/null ||
        { apt-get update -qq && apt-get download -q linux-source-6.12; }; })
fi
deb=$(compgen -G "$cache/linux-source-6.12_*.deb" | sort -V | tail -1)
src=$cache/src
if [ ! -e "$src/.from-$(basename "$deb")" ]; then
    rm -rf "$src" && mkdir -p "$src"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -O --wildcards './usr/src/linux-source-6.12.tar.xz' |
        xz -d | tar -x -C "$src" --strip-components=1
    touch "$src/.from-$(basename "$deb")"
fi
note "download and unpack: $((SECONDS - t)) s"

t=$SECONDS
make -s -C "$src" ARCH=x86_64 tinyconfig
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment" >/dev/null
make -s -C "$src" ARCH=x86_64 olddefconfig
for opt in TRUSTED_KEYS TCG_TIS CRYPTO_USER_API_HASH VIRTIO_BLK EXT2_FS SERIAL_8250_CONSOLE; do
    grep -q "^CONFIG_$opt=y" "$src/.config" || { note "CONFIG_$opt did not stay on"; exit 1; }
done
note "configure: $((SECONDS - t)) s"

t=$SECONDS
nice make -s -C "$src" ARCH=x86_64 -j"$(nproc)" bzImage
note "build (make -j$(nproc) bzImage): $((SECONDS - t)) s"
cp "$src/arch/x86/boot/bzImage" "$cache/bzImage"
echo "$stamp" >"$cache/bzImage.stamp"
note "$cache/bzImage: $(stat -c %s "$cache/bzImage") bytes"
