//! Power cuts during refresh-and-store: `devauth token` is SIGKILLed at seeded random moments
//! over the whole of a refresh (start-up, lock, request, the server's answer, the write, the
//! rename, the exit), hundreds of times per server behaviour, and after every kill the store
//! must parse and hold either the previous token set or exactly the set the server issued in
//! that cycle — never a torn, empty or mixed one — and the next run must leave no temp file.
//!
//! A recording proxy between devauth and the test server sees every token answer (so the test
//! knows exactly which access/refresh pair was issued, and when the answer was delivered), and
//! an inotify watch sees the rename, which together measure the window in which a kill loses the
//! server's answer.
//!
//! Behaviours:
//! - no rotation: the answer may be lost, never the grant;
//! - rotation with a reuse grace period (Auth0's rotation leeway, Okta's grace period): a lost
//!   answer is fetched again with the old refresh token on the next run;
//! - strict rotation with reuse detection: a kill between the server's rotation and devauth's
//!   rename costs the grant. The test counts how often that happens, checks that `devauth token`
//!   then exits 4 (pair again) every time instead of retrying, and that the agent goes back to
//!   the pairing screen once.
//!
//! The store is sealed (`[storage] seal = "tpm2"`, the TPM a swtpm on a socket) wherever swtpm
//! is installed (always in CI, where DEVAUTH_TEST_REQUIRE_SWTPM=1), so every kill also lands
//! in the middle of unsealing and sealing; elsewhere the plain store is tested, with a note.
//!
//! `POWERCUT_CYCLES` (default 500; 100 under `DEVAUTH_TEST_RUNNER`, i.e. qemu) sets the cycles
//! per behaviour, `POWERCUT_SEED` the seed.
//! Results are printed (run with `--nocapture`, or see docs/powercut.md).

mod common;

use common::tpm::Swtpm;
use common::*;
use devauth::clock::SystemClock;
use devauth::secret::Secret;
use devauth::store::{Expiry, Sealing, StoredTokens, TimeNow, TokenSet, TokenStore};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

const DEFAULT_CYCLES: usize = 500;
const DEFAULT_SEED: u64 = 0x5eed_0fd0_7c07;

/// Cycles under an emulator (`DEVAUTH_TEST_RUNNER`, qemu-user), where every run is ~20x slower.
const EMULATED_CYCLES: usize = 100;

fn cycles() -> usize {
    std::env::var("POWERCUT_CYCLES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(if slow_factor() > 1 {
            EMULATED_CYCLES
        } else {
            DEFAULT_CYCLES
        })
}

fn seed() -> u64 {
    std::env::var("POWERCUT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// splitmix64: small, seeded, good enough to spread kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, max).
    fn below(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(self.next() % nanos)
    }
}

// ---------------------------------------------------------------------------------------------
// A recording proxy: forwards each connection to the server byte for byte and remembers every
// token answer (access token, refresh token, the refresh token the request presented, when the
// answer had been delivered to devauth).
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Issued {
    access: String,
    refresh: Option<String>,
    /// The `refresh_token` the request presented (`None`: a device-code grant).
    presented: Option<String>,
    /// When the last byte of the answer had been handed to devauth's socket.
    delivered: Instant,
}

struct Proxy {
    addr: SocketAddr,
    /// Peer addresses of the connections accepted so far.
    accepted: Arc<Mutex<Vec<SocketAddr>>>,
    issued: Arc<Mutex<Vec<Issued>>>,
    active: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let issued = Arc::new(Mutex::new(Vec::new()));
        let active = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (i, a, s, acc) = (
            issued.clone(),
            active.clone(),
            stop.clone(),
            accepted.clone(),
        );
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                if let Ok(peer) = client.peer_addr() {
                    acc.lock().unwrap().push(peer);
                }
                let (i, a) = (i.clone(), a.clone());
                thread::spawn(move || {
                    forward(client, upstream, &i);
                    a.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Proxy {
            addr,
            accepted,
            issued,
            active,
            stop,
            thread: Some(thread),
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn issued(&self) -> Vec<Issued> {
        self.issued.lock().unwrap().clone()
    }

    /// Waits until every connection made so far was accepted and has finished. A killed
    /// client's request may still sit in the listen backlog, complete: like a real server, the
    /// proxy then still forwards it and the server still processes (and rotates) it, and that
    /// answer counts as issued in the cycle that sent it. The backlog is FIFO, so once a
    /// connection made now has been accepted, every earlier one has been too.
    fn wait_idle(&self) {
        let probe = TcpStream::connect(self.addr).expect("connect to the proxy");
        let me = probe.local_addr().unwrap();
        drop(probe);
        assert!(
            wait_until(Duration::from_secs(10), || self
                .accepted
                .lock()
                .unwrap()
                .contains(&me)),
            "the proxy did not accept"
        );
        assert!(
            wait_until(Duration::from_secs(10), || self
                .active
                .load(Ordering::SeqCst)
                == 0),
            "proxy connections did not finish"
        );
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn forward(mut client: TcpStream, upstream: SocketAddr, issued: &Mutex<Vec<Issued>>) {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut from_client), Ok(mut to_server)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let request = thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match from_client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if to_server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_server.shutdown(Shutdown::Write);
        seen
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let mut delivered = Instant::now();
    loop {
        match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                // A killed client makes this fail; the answer was issued all the same.
                let _ = client.write_all(&buf[..n]);
                delivered = Instant::now();
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let request = request.join().unwrap_or_default();
    let body = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes).into_owned();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    };
    let Ok(v) = serde_json::from_str::<Value>(&body(&answer)) else {
        return;
    };
    let Some(access) = v.get("access_token").and_then(Value::as_str) else {
        return;
    };
    let req_body = body(&request);
    let presented = req_body
        .split('&')
        .find_map(|kv| kv.strip_prefix("refresh_token="))
        .map(str::to_string);
    issued.lock().unwrap().push(Issued {
        access: access.to_string(),
        refresh: v
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string),
        presented,
        delivered,
    });
}

// ---------------------------------------------------------------------------------------------
// Watching renames onto the token file (inotify), to time the write window.
// ---------------------------------------------------------------------------------------------

struct RenameWatch {
    at: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RenameWatch {
    fn start(dir: &Path, name: &str) -> RenameWatch {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain inotify calls; `path` is a valid NUL-terminated string.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        assert!(fd >= 0, "inotify_init1");
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_MOVED_TO) };
        assert!(wd >= 0, "inotify_add_watch");
        let at = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, want) = (at.clone(), stop.clone(), name.as_bytes().to_vec());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::SeqCst) {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(&mut pfd, 1, 20) } <= 0 {
                    continue;
                }
                // SAFETY: reads into our buffer of its length.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                let now = Instant::now();
                let Ok(n) = usize::try_from(n) else { continue };
                // struct inotify_event { int wd; u32 mask, cookie, len; char name[len]; }
                let mut off = 0;
                while off + 16 <= n {
                    let len = u32::from_ne_bytes(buf[off + 12..off + 16].try_into().unwrap());
                    let name = &buf[off + 16..off + 16 + len as usize];
                    let name = name.split(|b| *b == 0).next().unwrap_or(&[]);
                    if name == want.as_slice() {
                        a.lock().unwrap().push(now);
                    }
                    off += 16 + len as usize;
                }
            }
            // SAFETY: our descriptor.
            unsafe { libc::close(fd) };
        });
        RenameWatch {
            at,
            stop,
            thread: Some(thread),
        }
    }

    fn renames(&self) -> Vec<Instant> {
        self.at.lock().unwrap().clone()
    }
}

impl Drop for RenameWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world of one behaviour: server, proxy, config pointing at the proxy.
// ---------------------------------------------------------------------------------------------

struct World {
    env: Env,
    proxy: Proxy,
    scratch: tempfile::TempDir,
    /// The token store (`env.store`, or one elsewhere: see [`World::with_store_in`]).
    store: PathBuf,
    _store_dir: Option<tempfile::TempDir>,
    /// The TPM sealing the store; `None` where swtpm is not installed.
    tpm: Option<Swtpm>,
}

impl World {
    fn new(f: impl FnOnce(&mut Behavior)) -> World {
        World::with_store_in(None, f)
    }

    /// With the store in a fresh directory under `parent` (e.g. a tmpfs).
    fn with_store_in(parent: Option<&Path>, f: impl FnOnce(&mut Behavior)) -> World {
        let env = Setup::new(Provider::Generic)
            .approve_after_polls(0)
            .behavior(|b| {
                // expires_in 0: every `devauth token` refreshes.
                b.token_lifetime = Some(0);
                b.enforce_interval = false;
                f(b)
            })
            .start();
        let proxy = Proxy::start(env.server().addr());
        let store_dir = parent.map(|p| tempfile::tempdir_in(p).unwrap());
        let store = match &store_dir {
            Some(d) => d.path().join("state/tokens.json"),
            None => env.store.clone(),
        };
        let text = env
            .config_text(TEST_CLIENT_ID, "", "[display]\nbackend = \"none\"\n")
            .replace(env.base(), &proxy.base())
            .replace(
                &env.store.display().to_string(),
                &store.display().to_string(),
            );
        env.write_config(&text);
        use devauth_testserver::swtpm::{available, required};
        if !available() {
            assert!(
                !required(),
                "swtpm is required (DEVAUTH_TEST_REQUIRE_SWTPM=1)"
            );
            eprintln!("note: swtpm is not installed: the power cuts hit the plain store");
        }
        let tpm = available().then(|| {
            let tpm = Swtpm::start(&env.dir().join("tpm")).expect("start swtpm");
            common::tpm::use_tpm(&env.config, env.dir(), tpm.socket(), "tpm2", "");
            tpm
        });
        env.pair();
        World {
            env,
            proxy,
            scratch: tempfile::tempdir().unwrap(),
            store,
            _store_dir: store_dir,
            tpm,
        }
    }

    /// The store as devauth opens it with this world's config.
    fn token_store(&self, path: &Path) -> TokenStore {
        match &self.tpm {
            Some(tpm) => TokenStore::with_sealing(path, Sealing::tpm2(tpm.socket())),
            None => TokenStore::new(path),
        }
    }

    fn store_dir(&self) -> PathBuf {
        self.store.parent().unwrap().to_path_buf()
    }

    /// The store as devauth's own parser reads it, from a copy (so that this read removes no
    /// temp file: cleaning up is the next devauth run's job, which the test checks).
    fn read_store(&self) -> Result<Option<StoredTokens>, String> {
        let copy = self.scratch.path().join("tokens.json");
        let _ = std::fs::remove_file(&copy);
        match std::fs::copy(&self.store, &copy) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
        self.token_store(&copy).load().map_err(|e| e.to_string())
    }

    fn temps(&self) -> Vec<String> {
        std::fs::read_dir(self.store_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tokens.json.tmp."))
            .collect()
    }

    /// Pairs again without devauth (whose poll interval is at least 1 s): a device-code grant
    /// straight against the server, stored with devauth's own store code.
    fn pair_directly(&self) {
        let form = format!("client_id={TEST_CLIENT_ID}&scope=openid");
        let code = post(self.env.server().addr(), "/device/code", &form);
        let device_code = code["device_code"].as_str().unwrap().to_string();
        let form = format!(
            "grant_type={}&device_code={device_code}&client_id={TEST_CLIENT_ID}",
            DEVICE_GRANT.replace(':', "%3A")
        );
        let t = post(self.env.server().addr(), "/token", &form);
        let now = TimeNow::read(&SystemClock);
        let stored = StoredTokens {
            client_id: TEST_CLIENT_ID.to_string(),
            token_endpoint: format!("{}/token", self.proxy.base()),
            tokens: TokenSet {
                access_token: Secret::new(t["access_token"].as_str().unwrap()),
                token_type: "Bearer".into(),
                refresh_token: Some(Secret::new(t["refresh_token"].as_str().unwrap())),
                id_token: None,
                scopes: vec!["openid".into()],
                account: None,
                expiry: Some(Expiry::new(Duration::ZERO, SystemTime::now(), &now)),
            },
            grant_refused: None,
        };
        self.token_store(&self.store).save_pairing(&stored).unwrap();
    }
}

/// A form POST to the test server; the JSON answer.
fn post(addr: SocketAddr, path: &str, form: &str) -> Value {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {answer}"))
}

/// `devauth token` started directly (no reader threads: its output is not needed), so the kill
/// lands on devauth itself at a precise moment.
fn spawn_token(env: &Env) -> std::process::Child {
    let bin = std::env::var_os("DEVAUTH_TEST_BIN")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| OsString::from(env!("CARGO_BIN_EXE_devauth")));
    let runner = std::env::var("DEVAUTH_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(first) => {
            let mut c = Command::new(first);
            c.args(words).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    for v in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(v);
    }
    cmd.arg("token")
        .env("DEVAUTH_CONFIG", &env.config)
        .current_dir(env.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn devauth token")
}

// ---------------------------------------------------------------------------------------------
// The kill loop.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rotation {
    None,
    Grace,
    Strict,
}

#[derive(Debug, Default)]
struct Tally {
    cycles: usize,
    /// Killed before the server answered anything: the store holds the previous set.
    before_answer: usize,
    /// Killed while the server held its (already processed) answer: previous set kept.
    answer_pending: usize,
    /// Killed after the answer reached devauth, before the rename: previous set kept.
    answer_lost_in_devauth: usize,
    /// Killed after the rename (or it had exited): the store holds the new set.
    new_set: usize,
    /// devauth had finished before the kill came.
    exited_first: usize,
    /// A temp file was there right after the kill (it is prepared before the request, so any
    /// kill between the lock and the rename leaves one); the next run removed it.
    temp_left: usize,
    /// Strict rotation: the grant was lost (the answer was lost after the server rotated).
    grants_lost: usize,
    /// Grace: a lost answer fetched again with the old refresh token.
    recovered_by_grace: usize,
    /// Durations of unkilled refresh runs (start to exit), for the kill distribution.
    run_time: Duration,
}

impl Tally {
    fn report(&self, name: &str) -> String {
        let pct = |n: usize| 100.0 * n as f64 / self.cycles.max(1) as f64;
        format!(
            "powercut {name}: {} cycles, kills spread over 0..{:.1?} | previous set kept: {} \
             (before the answer {}, answer held by the server {}, answer lost in devauth {}) | \
             new set: {} (exited before the kill {}) | temp file left by the kill: {} (every one \
             removed by the next run) | torn/empty/mixed: 0 | grants lost: {} ({:.2}%) | \
             recovered by grace: {} | answer-loss exposure per refresh ≈ {:.2?}, of which after \
             the answer reached devauth ≈ {:.2?}",
            self.cycles,
            self.run_time,
            self.before_answer + self.answer_pending + self.answer_lost_in_devauth,
            self.before_answer,
            self.answer_pending,
            self.answer_lost_in_devauth,
            self.new_set,
            self.exited_first,
            self.temp_left,
            self.grants_lost,
            pct(self.grants_lost),
            self.recovered_by_grace,
            // A kill lands uniformly in the span: share of kills × span = time exposed.
            self.run_time.mul_f64(
                (self.answer_pending + self.answer_lost_in_devauth) as f64
                    / self.cycles.max(1) as f64
            ),
            self.run_time
                .mul_f64(self.answer_lost_in_devauth as f64 / self.cycles.max(1) as f64),
        )
    }
}

/// The kill loops run one at a time: each calibrates its kill times on an otherwise quiet
/// machine, and three loops fighting over two cores skew which phase a kill lands in.
static KILL_LOOPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// SIGKILL must reach devauth itself: a runner that wraps it in a shell (scripts/rss-wrap.sh,
/// used by the budget's RSS measurement) would be killed instead and leave devauth running.
fn kills_reach_devauth() -> bool {
    let wrapped = std::env::var("DEVAUTH_TEST_RUNNER").is_ok_and(|r| r.contains("rss-wrap"));
    if wrapped {
        eprintln!("SKIPPED: the test runner wraps devauth in a shell; SIGKILL would not reach it");
    }
    !wrapped
}

fn kill_loop(name: &str, rotation: Rotation, refresh_delay: Duration) -> Tally {
    let _one_at_a_time = KILL_LOOPS.lock().unwrap_or_else(|e| e.into_inner());
    let world = World::new(|b| {
        b.refresh_delay = refresh_delay;
        match rotation {
            Rotation::None => b.rotate_refresh_tokens = false,
            Rotation::Grace => {
                b.rotate_refresh_tokens = true;
                b.reuse_detection = true;
                b.reuse_grace = Duration::from_secs(60);
            }
            Rotation::Strict => {
                b.rotate_refresh_tokens = true;
                b.reuse_detection = true;
                b.reuse_grace = Duration::ZERO;
            }
        }
    });
    let env = &world.env;
    let mut rng = Rng(seed() ^ (rotation as u64) << 56 ^ refresh_delay.as_micros() as u64);
    let mut tally = Tally::default();

    // Calibrate: how long a whole refresh run takes here (debug build, qemu, a loaded CI),
    // started the way the killed runs are.
    let mut runs = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let status = spawn_token(env).wait().unwrap();
        runs.push(start.elapsed());
        assert!(status.success(), "calibration run failed: {status}");
    }
    runs.sort();
    // Kills spread uniformly from the start to a bit past a typical run, so some land after
    // the exit too.
    tally.run_time = runs[runs.len() / 2].mul_f64(1.15);

    let mut real_repairs = 0;
    for cycle in 0..cycles() {
        tally.cycles += 1;
        let prev = world
            .read_store()
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"))
            .unwrap_or_else(|| panic!("cycle {cycle}: no store before the run"));
        let prev_rt = prev
            .tokens
            .refresh_token
            .as_ref()
            .map(|s| s.expose().to_string());
        let mark = world.proxy.issued().len();
        let delay = rng.below(tally.run_time);

        let mut child = spawn_token(env);
        let started = Instant::now();
        thread::sleep(delay.saturating_sub(started.elapsed()));
        let exited_first = matches!(child.try_wait(), Ok(Some(_)));
        let killed_at = Instant::now();
        let _ = child.kill();
        let _ = child.wait();
        world.proxy.wait_idle();

        let temps = world.temps();
        let cur = match world.read_store() {
            Ok(Some(c)) => c,
            Ok(None) => panic!("cycle {cycle}: the store is GONE after a kill at {delay:?}"),
            Err(e) => panic!("cycle {cycle}: the store is TORN after a kill at {delay:?}: {e}"),
        };
        let answers: Vec<Issued> = world.proxy.issued()[mark..]
            .iter()
            .filter(|i| i.presented.is_some() && i.presented == prev_rt)
            .cloned()
            .collect();
        assert!(
            answers.len() <= 1,
            "cycle {cycle}: {} refreshes",
            answers.len()
        );
        let answer = answers.first();
        let holds = |i: &Issued| {
            cur.tokens.access_token.expose() == i.access
                && cur
                    .tokens
                    .refresh_token
                    .as_ref()
                    .map(|s| s.expose().to_string())
                    == i.refresh.clone().or(prev_rt.clone())
        };
        let mut lost = false;
        if cur == prev {
            match answer {
                None => tally.before_answer += 1,
                Some(a) => {
                    if a.delivered > killed_at {
                        tally.answer_pending += 1;
                    } else {
                        tally.answer_lost_in_devauth += 1;
                    }
                    lost = true;
                }
            }
        } else {
            let a = answer.unwrap_or_else(|| {
                panic!("cycle {cycle}: the store changed but the server issued nothing (MIXED)")
            });
            assert!(
                holds(a),
                "cycle {cycle}: the store holds neither the previous set nor the one issued \
                 (MIXED) after a kill at {delay:?}"
            );
            tally.new_set += 1;
            if exited_first {
                tally.exited_first += 1;
            }
        }
        if !temps.is_empty() {
            tally.temp_left += 1;
        }

        // The next run: devauth's own parser accepts the store, and stale temps are gone.
        let status = env.run(&["status", "--json"]);
        status.code(exit::OK);
        let s: Value = serde_json::from_str(status.line()).unwrap();
        assert_eq!(s["paired"], true, "cycle {cycle}: {}", status.show());
        assert_eq!(
            world.temps(),
            Vec::<String>::new(),
            "cycle {cycle}: temp files survived the next run"
        );

        if lost {
            match rotation {
                Rotation::None => {}
                Rotation::Grace => tally.recovered_by_grace += 1,
                Rotation::Strict => {
                    tally.grants_lost += 1;
                    // The old refresh token is rotated out: presenting it is reuse, the server
                    // revokes the grant, and devauth says "pair again" — every time, at once.
                    let reuse_before = env.server().stats().reuse_detected;
                    for _ in 0..2 {
                        let out = env.run(&["token"]);
                        out.code(exit::PAIR_AGAIN)
                            .stderr_has("pairing needed again");
                        assert!(out.elapsed < scaled(Duration::from_secs(10)));
                    }
                    assert!(env.server().stats().reuse_detected > reuse_before);
                    // Pairing again recovers: with devauth itself the first few times (it waits
                    // at least the 1 s interval), then directly to keep the loop fast.
                    if real_repairs < 3 {
                        real_repairs += 1;
                        env.pair();
                    } else {
                        world.pair_directly();
                    }
                }
            }
        }
    }

    // Still usable: one more refresh goes through and the server knows the new token.
    env.server().set_behavior(|b| {
        b.token_lifetime = Some(3600);
        b.refresh_delay = Duration::ZERO;
    });
    // (Under grace, a lost last answer is replayed as it was, with its 0 s access token: one
    // more run then refreshes with the rotated token.)
    let live = |t: &String| env.server().live_access_tokens().contains(t);
    if rotation == Rotation::Strict {
        // Under strict rotation the last kill may have landed after the server rotated but
        // before its answer was recorded by the proxy (a loaded CI machine): the grant is then
        // gone, and devauth must say so (exit 4) rather than loop. Pair again and go on.
        let out = env.run(&["token"]);
        if out.code == Some(exit::PAIR_AGAIN) {
            out.stderr_has("pairing needed again");
            tally.grants_lost += 1;
            world.pair_directly();
        }
    }
    let token = env.token();
    assert!(
        live(&token) || live(&env.token()),
        "no live token after the loop"
    );
    if rotation != Rotation::Strict {
        // Never a grant lost, never a second pairing.
        assert_eq!(env.server().stats().device_codes_issued, 1);
        assert_eq!(env.server().stats().reuse_detected, 0);
    }
    let report = tally.report(name);
    let store = match world.tpm {
        Some(_) => "sealed by the TPM (swtpm)",
        None => "plain",
    };
    eprintln!("{report} | store: {store}");
    tally
}

#[test]
fn power_cuts_without_rotation_never_lose_the_pairing() {
    if !kills_reach_devauth() {
        return;
    }
    let t = kill_loop("no rotation", Rotation::None, Duration::from_millis(20));
    assert_eq!(t.grants_lost, 0);
    assert!(t.new_set > 0 && t.answer_pending > 0, "{t:?}");
}

#[test]
fn power_cuts_with_a_reuse_grace_period_never_lose_the_pairing() {
    if !kills_reach_devauth() {
        return;
    }
    let t = kill_loop(
        "rotation + grace",
        Rotation::Grace,
        Duration::from_millis(20),
    );
    assert_eq!(t.grants_lost, 0);
    assert!(t.recovered_by_grace > 0 && t.new_set > 0, "{t:?}");
}

/// No artificial delay: the answer comes as fast as the loopback server can send it, so the
/// grant-loss rate is what devauth's own window costs (plus the loopback transfer).
#[test]
fn power_cuts_with_strict_rotation_lose_the_grant_only_in_the_write_window() {
    if !kills_reach_devauth() {
        return;
    }
    let t = kill_loop("strict rotation", Rotation::Strict, Duration::ZERO);
    // Every loss had an answer issued before the kill (the loop checks it); the rate itself
    // depends on the disk's fsync latency and is reported, not bounded here.
    assert!(t.new_set > 0 && t.before_answer > 0, "{t:?}");
    assert_eq!(
        t.grants_lost,
        t.answer_pending + t.answer_lost_in_devauth,
        "{t:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The window, measured without killing: answer delivered → rename seen.
// ---------------------------------------------------------------------------------------------

/// `n` unkilled refreshes; for each, the time from the answer's last byte handed to devauth to
/// the rename onto the token file (seen by inotify). Sorted.
fn measure_window(world: &World, n: usize) -> Vec<Duration> {
    let watch = RenameWatch::start(&world.store_dir(), "tokens.json");
    let mark = world.proxy.issued().len();
    for _ in 0..n {
        world.env.token();
    }
    world.proxy.wait_idle();
    // The watch thread polls every 20 ms at worst.
    thread::sleep(Duration::from_millis(50));
    let answers: Vec<Instant> = world.proxy.issued()[mark..]
        .iter()
        .map(|i| i.delivered)
        .collect();
    let renames = watch.renames();
    assert_eq!(answers.len(), n);
    assert_eq!(renames.len(), n, "one rename per refresh");
    let mut windows: Vec<Duration> = answers
        .iter()
        .zip(&renames)
        .map(|(a, r)| r.saturating_duration_since(*a))
        .collect();
    windows.sort();
    windows
}

fn describe(what: &str, w: &[Duration]) -> String {
    let q = |p: f64| w[((w.len() - 1) as f64 * p) as usize];
    let mean = w.iter().sum::<Duration>() / w.len() as u32;
    format!(
        "powercut window ({what}; answer delivered → rename visible), {} refreshes: min {:?}, \
         median {:?}, mean {:?}, p90 {:?}, max {:?}",
        w.len(),
        q(0.0),
        q(0.5),
        mean,
        q(0.9),
        q(1.0)
    )
}

/// A measurement, not a check of behaviour (inotify polling and fsync latency depend on the
/// machine and its load): run it with `cargo test --test powercut -- --ignored --nocapture`.
#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn the_window_between_the_answer_and_the_rename_is_measured() {
    let n = 60;
    let disk = measure_window(&World::new(|_| {}), n);
    eprintln!("{}", describe("store on the test's temp dir", &disk));
    // Sanity only (fsync on a busy CI disk can be slow): well under a second.
    assert!(disk[n / 2] < scaled(Duration::from_millis(500)), "{disk:?}");
    // On tmpfs fsync costs nothing: what is left is devauth's own part of the window (read the
    // answer, parse, encode, write, rename) plus the test's measuring.
    let shm = Path::new("/dev/shm");
    if std::fs::metadata(shm).is_ok_and(|m| m.is_dir()) {
        let ram = measure_window(&World::with_store_in(Some(shm), |_| {}), n);
        eprintln!("{}", describe("store on tmpfs, fsync free", &ram));
        assert!(ram[n / 2] < scaled(Duration::from_millis(100)), "{ram:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The agent after a lost grant: back to the pairing screen once, not failing in a loop.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_agent_returns_to_pairing_once_after_a_power_cut_lost_the_grant() {
    if !kills_reach_devauth() {
        return;
    }
    use common::agent::{Agent, AgentEnv, fast};
    let env = AgentEnv::new(Behavior {
        reuse_grace: Duration::ZERO,
        ..fast(2)
    });
    let out = env.devauth(&["pair", "--json"]);
    assert!(out.status.success(), "{out:?}");
    // A refresh whose answer the server holds back for a while; the rotation is done when the
    // request is processed. SIGKILL in that moment: the store keeps the rotated-out token.
    env.srv
        .set_behavior(|b| b.refresh_delay = Duration::from_millis(800));
    thread::sleep(Duration::from_millis(1100)); // past half the 2 s lifetime: stale
    let mut child = common::agent::command()
        .arg("-c")
        .arg(&env.config)
        .arg("token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_stats("the server rotated", |s| s.refreshes == 1);
    child.kill().unwrap();
    child.wait().unwrap();
    env.srv.set_behavior(|b| b.refresh_delay = Duration::ZERO);
    assert_eq!(env.srv.live_refresh_tokens().len(), 1);
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&env.store).unwrap()).unwrap();
    let stored_rt = stored["refresh_token"].as_str().unwrap();
    assert!(
        !env.srv
            .live_refresh_tokens()
            .contains(&stored_rt.to_string()),
        "the store should hold the rotated-out refresh token"
    );

    let mut agent: Agent = env.start_agent();
    agent.wait_events("pairing_required, then paired, then a renewal", |ev| {
        let names: Vec<&str> = ev.iter().filter_map(|e| e["event"].as_str()).collect();
        let Some(gone) = names.iter().position(|n| *n == "pairing_required") else {
            return false;
        };
        let Some(paired) = names[gone..].iter().position(|n| *n == "paired") else {
            return false;
        };
        names[gone + paired..].contains(&"refreshed")
    });
    let names = agent.names();
    let first_gone = names
        .iter()
        .position(|n| n == "pairing_required")
        .unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(
        names.get(first_gone + 1).map(String::as_str),
        Some("code"),
        "{names:?}"
    );
    let gone = &agent.events()[first_gone];
    assert!(
        gone["reason"]
            .as_str()
            .unwrap_or("")
            .contains("invalid_grant"),
        "{gone}"
    );
    assert_eq!(agent.count("pairing_required"), 1, "{names:?}");
    assert_eq!(agent.count("error"), 0, "{names:?}");
    let s = env.srv.stats();
    assert_eq!(s.reuse_detected, 1, "{s:?}");
    assert_eq!(s.device_codes_issued, 2, "{s:?}");
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent exited"
    );
    agent.signal(libc::SIGTERM);
    agent.wait_exit();
}
