#!/usr/bin/env python3
"""devauth side by side with the clients a user would otherwise pick, against the same loopback
test server in the same run; prints ONE markdown table (absolute numbers, and ratios with
devauth = 1.0). Run it through bench/compare.sh, which builds and installs what this needs.

Clients (all doing the same pairing and the same refresh, all with plain text output):
  devauth   target/release/devauth, `pair --json` with `[display] backend = "none"`, `token`
  python    bench/clients/python_device_flow.py (requests), run by bench/.venv/bin/python
  node      bench/clients/node/device_flow.mjs (openid-client 6, allowInsecureRequests)

Measured:
  - time from start to the code shown: process start to the stdout line with the user code
    (median of BENCH_RUNS runs)
  - peak RSS of a whole pairing (code, approval, tokens stored): VmHWM of the process, sampled
  - CPU over a pending period: from the code shown to BENCH_PENDING_SECS later without approval
    (the interval is 5 s: 12 polls per minute): wait4's total (all threads) minus the live
    threads' schedstat (ns) at the code; CPU of a whole pairing from wait4's rusage
  - bytes written to the store per refresh and fsyncs: strace of one `token` refresh, summing
    write/pwrite64 to the store file (and its temp file)
  - binary / install size: devauth's stripped release binary; the venv's packages (pip and
    setuptools left out); node_modules. Interpreters are listed, not added.
  - `token` latency with a valid token and with a refresh (hyperfine when installed, else a
    timing loop; median)
  - devauth alone: full-frame render times (examples/bench_screen)

Environment knobs: BENCH_PENDING_SECS (default 60), BENCH_RUNS (default 7), BENCH_TOKEN_RUNS
(default 50), BENCH_REFRESH_RUNS (default 15), BENCH_SKIP_RENDER=1.
"""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DEVAUTH = ROOT / "target/release/devauth"
SERVER = ROOT / "target/release/devauth-testserver"
SCREEN = ROOT / "target/release/examples/bench_screen"
VENV_PY = BENCH / ".venv/bin/python"
NODE_DIR = BENCH / "clients/node"

PENDING = int(os.environ.get("BENCH_PENDING_SECS", "60"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
TOKEN_RUNS = int(os.environ.get("BENCH_TOKEN_RUNS", "50"))
REFRESH_RUNS = int(os.environ.get("BENCH_REFRESH_RUNS", "15"))

CODE_RE = re.compile(r'"user_code":"([A-Z0-9-]+)"|^code ([A-Z0-9-]+)')


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The test server.
# ---------------------------------------------------------------------------------------------

class Server:
    def __init__(self, interval, lifetime):
        self.proc = subprocess.Popen(
            [str(SERVER), "--port", "0", "--interval", str(interval),
             "--token-lifetime", str(lifetime), "--client-id", "devauth-test"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening "):
            raise SystemExit(f"test server did not start: {line!r}")
        self.base = line.split(" ", 1)[1]

    def post(self, path, data=b""):
        req = urllib.request.Request(self.base + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def approve(self, code):
        return self.post("/test/approve", f"user_code={code}".encode())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# The clients.
# ---------------------------------------------------------------------------------------------

class Client:
    def __init__(self, name, label, workdir):
        self.name = name
        self.label = label
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)

    def store_for(self, server):
        return self.dir / f"store-{server.base.rsplit(':', 1)[1]}" / self.store_name

    def prepare(self, server):
        self.store_for(server).parent.mkdir(parents=True, exist_ok=True)


class Devauth(Client):
    store_name = "tokens.json"

    def config(self, server):
        cfg = self.dir / f"devauth-{server.base.rsplit(':', 1)[1]}.toml"
        if not cfg.exists():
            b = server.base
            cfg.write_text(
                f'[provider]\nclient_id = "devauth-test"\nallow_http_loopback = true\n'
                f'device_authorization_endpoint = "{b}/device/code"\ntoken_endpoint = "{b}/token"\n'
                f'[storage]\npath = "{self.store_for(server)}"\n[display]\nbackend = "none"\n')
        return cfg

    def pair(self, server):
        return [str(DEVAUTH), "-c", str(self.config(server)), "pair", "--json"]

    def token(self, server):
        return [str(DEVAUTH), "-c", str(self.config(server)), "token"]


class Python(Client):
    store_name = "tokens.json"

    def pair(self, server):
        return [str(VENV_PY), str(BENCH / "clients/python_device_flow.py"), "pair",
                server.base, str(self.store_for(server))]

    def token(self, server):
        return [str(VENV_PY), str(BENCH / "clients/python_device_flow.py"), "token",
                server.base, str(self.store_for(server))]


class Node(Client):
    store_name = "tokens.json"

    def pair(self, server):
        return ["node", str(NODE_DIR / "device_flow.mjs"), "pair", server.base,
                str(self.store_for(server))]

    def token(self, server):
        return ["node", str(NODE_DIR / "device_flow.mjs"), "token", server.base,
                str(self.store_for(server))]


# ---------------------------------------------------------------------------------------------
# Running a client: time to the code line, rusage via wait4.
# ---------------------------------------------------------------------------------------------

class Run:
    """A started client; `code()` waits for the user-code line."""

    def __init__(self, argv):
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self.code_at = None
        self.user_code = None
        self.lines = []
        self._got = threading.Event()
        self.hwm_kib = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        # VmHWM: the peak RSS of the program itself (its own address space since exec). Not
        # ru_maxrss: that also counts the forking parent's pages (this Python) before the exec.
        # VmHWM only grows, so sampling loses at most the last 2 ms before the exit.
        path = f"/proc/{self.proc.pid}/status"
        while self.proc.returncode is None:
            self.read_hwm(path)
            time.sleep(0.002)

    def read_hwm(self, path=None):
        try:
            with open(path or f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.hwm_kib = max(self.hwm_kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if self.user_code is None:
                m = CODE_RE.search(line)
                if m:
                    self.code_at = time.perf_counter()
                    self.user_code = m.group(1) or m.group(2)
                    self._got.set()
        self._got.set()

    def code(self, timeout=30):
        self._got.wait(timeout)
        if self.user_code is None:
            self.kill()
            raise SystemExit(f"no code from {self.proc.args}: {''.join(self.lines)!r}")
        return self.user_code

    def time_to_code(self):
        return self.code_at - self.start

    def kill(self):
        """SIGKILL and reap; returns (cpu seconds, peak RSS KiB, status)."""
        self.read_hwm()
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.reap()

    def reap(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid == self.proc.pid:
                self.proc.returncode = status
                return ru.ru_utime + ru.ru_stime, self.hwm_kib, status
            if deadline is not None and time.monotonic() > deadline:
                self.proc.send_signal(signal.SIGKILL)
                deadline = None
            time.sleep(0.005)


def time_to_code(clients, server):
    out = {c.name: [] for c in clients}
    cpu0 = {c.name: [] for c in clients}
    for _ in range(RUNS):
        for c in clients:
            r = Run(c.pair(server))
            r.code()
            cpu, _, _ = r.kill()
            out[c.name].append(r.time_to_code())
            cpu0[c.name].append(cpu)
    return ({k: statistics.median(v) for k, v in out.items()},
            {k: statistics.median(v) for k, v in cpu0.items()})


def on_cpu(pid):
    """Nanoseconds on CPU of the live threads of `pid` (/proc/PID/task/*/schedstat), or None
    when the kernel has no schedstat."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total


def pending_cpu(clients, server, startup_cpu):
    """All clients wait for approval at once (their CPU is what is measured, not wall time).

    CPU from the code shown to the end of the period = wait4's total of the process (every
    thread, also those that ended: ureq runs each connection's name resolution on a short-lived
    thread) minus the CPU of its live threads when the code was shown (schedstat, ns). A thread
    that ended before the code is thus counted in the pending period: a few µs against devauth,
    nothing for the other two. Without schedstat: minus the median start-up CPU (noisier)."""
    runs, at_code = {}, {}
    for c in clients:
        runs[c.name] = Run(c.pair(server))
        runs[c.name].code()
        at_code[c.name] = on_cpu(runs[c.name].proc.pid)
    log(f"pending for {PENDING} s without approval ...")
    time.sleep(PENDING)
    res = {}
    for name, r in runs.items():
        cpu, rss, _ = r.kill()
        base = at_code[name] / 1e9 if at_code[name] is not None else startup_cpu[name]
        res[name] = (max(cpu - base, 0.0), rss)
    return res


def full_pairing(clients, server):
    """Pair for real (approve at once); peak RSS of the whole pairing, tokens stored."""
    res = {}
    for c in clients:
        c.prepare(server)
        r = Run(c.pair(server))
        server.approve(r.code())
        cpu, rss, status = r.reap(timeout=60)
        if status != 0 or not c.store_for(server).exists():
            raise SystemExit(f"{c.name}: pairing failed ({status}): {''.join(r.lines)!r}")
        res[c.name] = (cpu, rss)
    return res


# ---------------------------------------------------------------------------------------------
# Bytes written per refresh (strace), token latency (hyperfine or a loop).
# ---------------------------------------------------------------------------------------------

WRITE_RE = re.compile(r'^\d+\s+(?:write|pwrite64)\((\d+)<([^>]*)>,.*\)\s+=\s+(\d+)')
SYNC_RE = re.compile(r'^\d+\s+(?:fsync|fdatasync)\(')


def bytes_per_refresh(client, server):
    """strace one refresh: bytes written to the store (its temp file included), fsync calls."""
    if not shutil.which("strace"):
        return None
    store = client.store_for(server)
    time.sleep(1.1)  # the 1 s token is now due for a refresh
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as t:
        subprocess.run(["strace", "-f", "-y", "-qq", "-e", "trace=write,pwrite64,fsync,fdatasync",
                        "-o", t.name] + client.token(server),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        written, syncs = 0, 0
        for line in t.read().splitlines():
            m = WRITE_RE.match(line)
            if m and Path(m.group(2)).parent == store.parent and store.name in Path(m.group(2)).name:
                written += int(m.group(3))
            if SYNC_RE.match(line):
                syncs += 1
    return written, syncs, store.stat().st_size


def hyperfine(cmd, runs, prepare=None):
    with tempfile.NamedTemporaryFile("r", suffix=".json") as t:
        argv = ["hyperfine", "-N", "--style", "none", "--warmup", "3", "--runs", str(runs),
                "--export-json", t.name]
        if prepare:
            argv += ["--prepare", prepare]
        subprocess.run(argv + [" ".join(cmd)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        data = json.load(open(t.name))
    return data["results"][0]["median"]


def loop_timing(cmd, runs, pause=0.0):
    times = []
    for _ in range(runs):
        if pause:
            time.sleep(pause)
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def token_latency(client, valid_server, refresh_server):
    have_hf = shutil.which("hyperfine") is not None
    valid_cmd = client.token(valid_server)
    refresh_cmd = client.token(refresh_server)
    if have_hf:
        valid = hyperfine(valid_cmd, TOKEN_RUNS)
        # Each run must refresh: the 1 s tokens are stale after the 1.05 s pause (not timed).
        refresh = hyperfine(refresh_cmd, REFRESH_RUNS, prepare="sleep 1.05")
    else:
        valid = loop_timing(valid_cmd, TOKEN_RUNS)
        refresh = loop_timing(refresh_cmd, REFRESH_RUNS, pause=1.05)
    return valid, refresh


# ---------------------------------------------------------------------------------------------
# Sizes.
# ---------------------------------------------------------------------------------------------

def du(path, skip=()):
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not any(d.startswith(s) for s in skip)]
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.lstat(p).st_size
    return total


def sizes():
    site = next((BENCH / ".venv/lib").glob("python3*/site-packages"))
    py_pkgs = du(site, skip=("pip", "setuptools", "_distutils_hack", "pkg_resources", "__pycache__"))
    node_pkgs = du(NODE_DIR / "node_modules")
    node_bin = os.path.realpath(shutil.which("node"))
    stdlib = subprocess.run([str(VENV_PY), "-c",
                             "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    py_std = du(stdlib, skip=("site-packages", "test", "__pycache__", "idlelib", "tkinter"))
    interp = (f"Python {sys.version_info.major}.{sys.version_info.minor} standard library "
              f"{py_std / 1e6:.0f} MB (+ interpreter); node binary "
              f"{os.path.getsize(node_bin) / 1e6:.0f} MB")
    return {"devauth": DEVAUTH.stat().st_size, "python": py_pkgs, "node": node_pkgs}, interp


# ---------------------------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------------------------

def fmt_time(s):
    if s is None:
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_bytes(n):
    if n is None:
        return "n/a"
    if n < 10_000:
        return f"{n} B"
    if n < 10_000_000:
        return f"{n / 1e3:.0f} kB"
    return f"{n / 1e6:.1f} MB"


def cell(value, base, fmt):
    if value is None:
        return "n/a"
    if base in (None, 0) or value is None:
        return fmt(value)
    return f"{fmt(value)} ({value / base:.1f}×)"


def main():
    for p, what in ((DEVAUTH, "cargo build --release"), (SERVER, "cargo build --release"),
                    (VENV_PY, "bench/compare.sh (venv)"),
                    (NODE_DIR / "node_modules/openid-client", "bench/compare.sh (npm)")):
        if not Path(p).exists():
            raise SystemExit(f"missing {p}: run {what}")
    work = tempfile.mkdtemp(prefix="devauth-bench-")
    clients = [Devauth("devauth", "devauth", work),
               Python("python", "Python requests", work),
               Node("node", "Node openid-client", work)]
    pair_srv = Server(interval=5, lifetime=3600)
    refresh_srv = Server(interval=1, lifetime=1)
    rows = []
    try:
        log("time to code ...")
        ttc, startup_cpu = time_to_code(clients, pair_srv)
        log("full pairings ...")
        pairing = full_pairing(clients, pair_srv)
        for c in clients:
            c.prepare(refresh_srv)
        full_pairing(clients, refresh_srv)
        log("CPU while pending ...")
        pend = pending_cpu(clients, pair_srv, startup_cpu)
        log("bytes per refresh ...")
        bpr = {c.name: bytes_per_refresh(c, refresh_srv) for c in clients}
        log("token latency ...")
        lat = {c.name: token_latency(c, pair_srv, refresh_srv) for c in clients}
        size, interp = sizes()
        render = None
        if os.environ.get("BENCH_SKIP_RENDER") != "1" and SCREEN.exists():
            log("render ...")
            render = subprocess.run([str(SCREEN)], capture_output=True, text=True,
                                    check=True).stdout
    finally:
        pair_srv.stop()
        refresh_srv.stop()
        shutil.rmtree(work, ignore_errors=True)

    names = [c.name for c in clients]
    d = "devauth"

    def row(metric, values, fmt):
        rows.append([metric] + [cell(values[n], values[d], fmt) for n in names])

    row("time from start to the code shown (median)", ttc, fmt_time)
    row("peak RSS of a whole pairing (VmHWM)", {n: pairing[n][1] * 1024 for n in names},
        fmt_bytes)
    row(f"peak RSS after {PENDING} s pending", {n: pend[n][1] * 1024 for n in names},
        fmt_bytes)
    row(f"CPU time while pending {PENDING} s (5 s interval)",
        {n: pend[n][0] for n in names}, fmt_time)
    row("CPU time of a whole pairing (start to stored)", {n: pairing[n][0] for n in names},
        fmt_time)
    if all(bpr[n] is not None for n in names):
        row("bytes written to the store per refresh", {n: bpr[n][0] for n in names}, fmt_bytes)
        rows.append(["fsyncs per refresh / crash-safe write"] +
                    [f"{bpr[n][1]} / {'yes (temp, fsync, rename, fsync dir)' if n == d else 'no (rewritten in place)'}"
                     for n in names])
    row("binary / installed packages", size, fmt_bytes)
    row("`token`, valid token (median)", {n: lat[n][0] for n in names}, fmt_time)
    row("`token` with a refresh (median)", {n: lat[n][1] for n in names}, fmt_time)

    labels = {c.name: c.label for c in clients}
    print(f"| metric | {' | '.join(labels[n] for n in names)} |")
    print("|---|" + "---|" * len(names))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(f"Ratios: value / devauth's. Interpreters not counted in sizes: {interp}. "
          f"Stores: openid-client and requests keep tokens in memory; the bench clients write "
          f"them as a typical script would (JSON, in place).")
    if render:
        print()
        print("devauth screen rendering (examples/bench_screen, release, single thread):")
        print()
        print("```")
        print(render.strip())
        print("```")


if __name__ == "__main__":
    main()
