#!/usr/bin/env python3
"""A runner prefix (DEVAUTH_TEST_RUNNER) that runs a 32-bit guest program under qemu-user and
records the peak resident memory of the GUEST, for scripts/budget.sh: appends
"<KiB> <subcommand>" to LOG per run, the format of scripts/rss-wrap.sh.

Why not GNU time around qemu: that is qemu's own RSS (the emulator, glib, its translated-code
cache: several MiB) plus the guest's. qemu-user places the whole 4 GiB address space of a 32-bit
guest at one host address (guest_base, set here with -B), so the host pages resident inside
[guest_base, guest_base + 4 GiB) are exactly the guest's: its binary's touched pages, heap,
stacks, mmaps. This script samples /proc/PID/smaps of qemu every few milliseconds and keeps the
largest sum of those Rss lines. A sample can miss a peak shorter than the interval; a pairing
holds its memory for seconds, so the figure is close to what the device would show.

usage: qemu-guest-rss.py LOG QEMU [QEMU OPTIONS...] PROGRAM [ARGS...]
  e.g. DEVAUTH_TEST_RUNNER="scripts/qemu-guest-rss.py /tmp/rss.log qemu-arm -cpu cortex-a7"
Exit status, stdin/stdout/stderr are the program's; SIGTERM/SIGINT/SIGHUP/SIGUSR1 go to qemu,
which delivers them to the guest.
"""

import os
import signal
import subprocess
import sys
import time

GUEST_BASE = 0x200000000  # 8 GiB: page aligned, far below the host's own mappings
GUEST_SPAN = 1 << 32
INTERVAL = 0.003
COMMANDS = ("pair", "token", "status", "unpair", "run")


def guest_rss_kib(pid):
    """KiB resident in the guest's address range, or None when the process is gone."""
    total = 0
    inside = False
    try:
        with open(f"/proc/{pid}/smaps", "rb") as f:
            for line in f:
                if line[:1] in b"0123456789abcdef" and b"-" in line.split(b" ", 1)[0]:
                    lo, hi = line.split(b" ", 1)[0].split(b"-")
                    lo, hi = int(lo, 16), int(hi, 16)
                    inside = GUEST_BASE <= lo and hi <= GUEST_BASE + GUEST_SPAN
                elif inside and line.startswith(b"Rss:"):
                    total += int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return total


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    log, qemu, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    cmd = next((a for a in rest if a in COMMANDS), "other")
    child = subprocess.Popen([qemu, "-B", hex(GUEST_BASE)] + rest)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    peak = 0
    while child.poll() is None:
        kib = guest_rss_kib(child.pid)
        if kib is not None:
            peak = max(peak, kib)
        time.sleep(INTERVAL)
    with open(log, "a") as f:
        f.write(f"{peak} {cmd}\n")
    rc = child.returncode
    sys.exit(128 - rc if rc < 0 else rc)


if __name__ == "__main__":
    main()
