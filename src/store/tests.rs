//! Unit tests of `store`.

use super::*;
use crate::clock::fake::FakeClock;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

const SECRET: &str = "ya29.SECRET-do-not-leak-7f3a";
const T0: i64 = 1_800_000_000; // 2027-01-15, what FakeClock starts at

fn sample() -> StoredTokens {
    StoredTokens {
        client_id: "client-123".into(),
        token_endpoint: "https://oauth2.example.com/token".into(),
        tokens: TokenSet {
            access_token: Secret::new(SECRET),
            token_type: "Bearer".into(),
            refresh_token: Some(Secret::new("1//refresh-secret")),
            id_token: Some(Secret::new("eyJhbGciOi.id.token")),
            scopes: vec!["openid".into(), "email".into()],
            account: Some("user@example.com".into()),
            expiry: Some(Expiry {
                lifetime_secs: 3600,
                obtained_unix: T0,
                boot_id: Some("boot-a".into()),
                obtained_boottime_ms: 1_000_000,
            }),
        },
        grant_refused: None,
    }
}

fn minimal() -> StoredTokens {
    StoredTokens {
        client_id: "Iv1.github".into(),
        token_endpoint: "https://github.com/login/oauth/access_token".into(),
        tokens: TokenSet {
            access_token: Secret::new("gho_abc"),
            token_type: "bearer".into(),
            refresh_token: None,
            id_token: None,
            scopes: vec![],
            account: None,
            expiry: None,
        },
        grant_refused: None,
    }
}

fn store_in(dir: &tempfile::TempDir) -> TokenStore {
    TokenStore::new(dir.path().join("tokens.json"))
}

fn temps(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tokens.json.tmp."))
        .collect();
    names.sort();
    names
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// ---- expiry ----

fn wall(unix: i64) -> SystemTime {
    if unix >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}

fn now(wall_unix: i64, boot_id: Option<&str>, boottime_secs: u64) -> TimeNow {
    TimeNow {
        wall: wall(wall_unix),
        boot_id: boot_id.map(str::to_string),
        boottime: Duration::from_secs(boottime_secs),
    }
}

/// Granted for an hour at T0, boot "a", 1000 s after boot.
fn granted() -> Expiry {
    Expiry::new(
        Duration::from_secs(3600),
        wall(T0),
        &now(T0, Some("a"), 1000),
    )
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

#[test]
fn expiry_new_records_both_clocks() {
    let n = TimeNow {
        wall: wall(T0 + 5),
        boot_id: Some("a".into()),
        boottime: Duration::from_millis(1_000_500),
    };
    // The server's Date (T0) is the anchor, not the local clock; lifetime rounds down.
    let e = Expiry::new(Duration::from_millis(3_600_900), wall(T0), &n);
    assert_eq!(
        e,
        Expiry {
            lifetime_secs: 3600,
            obtained_unix: T0,
            boot_id: Some("a".into()),
            obtained_boottime_ms: 1_000_500,
        }
    );
}

#[test]
fn time_now_reads_the_clock_and_boot_id() {
    let c = FakeClock::new();
    let n = TimeNow::read(&c);
    assert_eq!(n.wall, c.wall.get());
    assert_eq!(n.boottime, c.now.get());
    assert_eq!(n.boot_id, clock::boot_id());
}

#[test]
fn same_boot_counts_boottime() {
    assert_eq!(
        granted().remaining(&now(T0 + 600, Some("a"), 1600)),
        secs(3000)
    );
    // Boottime counts through suspend: the wall clock not having moved changes nothing.
    assert_eq!(granted().remaining(&now(T0, Some("a"), 1600)), secs(3000));
}

#[test]
fn same_boot_ignores_a_wrong_wall_clock() {
    // NTP stepped the clock back to 1970, or forward by decades: boottime decides.
    assert_eq!(granted().remaining(&now(0, Some("a"), 1600)), secs(3000));
    assert_eq!(
        granted().remaining(&now(T0 + 3_000_000_000, Some("a"), 1600)),
        secs(3000)
    );
}

#[test]
fn same_boot_expired_saturates_at_zero() {
    assert_eq!(
        granted().remaining(&now(T0, Some("a"), 1000 + 3600)),
        secs(0)
    );
    assert_eq!(
        granted().remaining(&now(T0, Some("a"), 1000 + 99_999)),
        secs(0)
    );
}

#[test]
fn boottime_going_backwards_falls_back_to_the_wall_clock() {
    // Same boot id but boottime below the anchor cannot happen honestly; do not trust it.
    assert_eq!(
        granted().remaining(&now(T0 + 600, Some("a"), 500)),
        secs(3000)
    );
    assert_eq!(granted().remaining(&now(30, Some("a"), 500)), None);
}

#[test]
fn reboot_with_a_1970_clock_is_untrusted() {
    assert_eq!(granted().remaining(&now(30, Some("b"), 20)), None);
    assert_eq!(granted().remaining(&now(-5, Some("b"), 20)), None);
}

#[test]
fn reboot_with_a_clock_behind_the_anchor_is_untrusted() {
    assert_eq!(granted().remaining(&now(T0 - 3600, Some("b"), 20)), None);
    let skew = WALL_CLOCK_SKEW.as_secs() as i64;
    assert_eq!(
        granted().remaining(&now(T0 - skew - 1, Some("b"), 20)),
        None
    );
}

#[test]
fn reboot_within_skew_counts_as_just_obtained_never_more() {
    let skew = WALL_CLOCK_SKEW.as_secs() as i64;
    assert_eq!(
        granted().remaining(&now(T0 - skew, Some("b"), 20)),
        secs(3600)
    );
    assert_eq!(granted().remaining(&now(T0 - 1, Some("b"), 20)), secs(3600));
}

#[test]
fn reboot_with_a_synced_clock_uses_the_wall_clock() {
    assert_eq!(
        granted().remaining(&now(T0 + 600, Some("b"), 20)),
        secs(3000)
    );
    assert_eq!(granted().remaining(&now(T0 + 3600, Some("b"), 20)), secs(0));
}

#[test]
fn reboot_with_a_clock_jumped_forward_means_expired() {
    let ten_years = 10 * 365 * 86_400;
    assert_eq!(
        granted().remaining(&now(T0 + ten_years, Some("b"), 20)),
        secs(0)
    );
}

#[test]
fn unknown_boot_ids_use_the_wall_clock() {
    let mut e = granted();
    e.boot_id = None;
    // Boottime alone would say 3000 s left; without a boot id it cannot be compared.
    assert_eq!(e.remaining(&now(T0 + 3500, Some("a"), 1600)), secs(100));
    assert_eq!(e.remaining(&now(T0 + 3500, None, 1600)), secs(100));
    assert_eq!(granted().remaining(&now(T0 + 3500, None, 1600)), secs(100));
    assert_eq!(e.remaining(&now(30, None, 1600)), None);
}

#[test]
fn an_anchor_taken_with_an_unsynced_clock_is_untrusted_after_reboot() {
    // Obtained at "1970 + 100 s" (no Date header, clock not yet set), read back after a
    // reboot still in 1970: the two wall readings say nothing about the time between them.
    let e = Expiry::new(
        Duration::from_secs(3600),
        wall(100),
        &now(100, Some("a"), 10),
    );
    assert_eq!(e.remaining(&now(160, Some("b"), 10)), None);
    // Within that boot, boottime still works.
    assert_eq!(e.remaining(&now(160, Some("a"), 70)), secs(3540));
}

#[test]
fn remaining_never_exceeds_lifetime_even_at_the_extremes() {
    let anchors = [i64::MIN, -1, 0, MIN_PLAUSIBLE_UNIX, T0, i64::MAX];
    let walls = [i64::MIN / 2, 0, MIN_PLAUSIBLE_UNIX, T0, i64::MAX / 2];
    for lifetime in [0, 1, 3600, u64::MAX] {
        for obtained_unix in anchors {
            for ms in [0, 1_000_000, u64::MAX] {
                let e = Expiry {
                    lifetime_secs: lifetime,
                    obtained_unix,
                    boot_id: Some("a".into()),
                    obtained_boottime_ms: ms,
                };
                for w in walls {
                    for boot in [Some("a"), Some("b"), None] {
                        for bt in [Duration::ZERO, Duration::from_secs(1000), Duration::MAX] {
                            let n = TimeNow {
                                wall: wall(w),
                                boot_id: boot.map(str::to_string),
                                boottime: bt,
                            };
                            if let Some(r) = e.remaining(&n) {
                                assert!(r <= Duration::from_secs(lifetime));
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---- file format ----

#[test]
fn round_trip_full_and_minimal() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    assert_eq!(store.load().unwrap(), None);
    for t in [sample(), minimal()] {
        assert_eq!(store.save(&t).unwrap(), SaveOutcome::Written);
        assert_eq!(store.load().unwrap(), Some(t));
    }
    assert_eq!(store.path(), dir.path().join("tokens.json"));
}

#[test]
fn file_starts_with_format_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    store.save(&sample()).unwrap();
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(
        text.starts_with("{\n  \"format\": \"devauth-tokens\",\n  \"version\": 1,\n"),
        "{text}"
    );
    assert!(text.ends_with("}\n"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["access_token"], SECRET);
    assert_eq!(v["expiry"]["obtained_boottime_ms"], 1_000_000);
    assert_eq!(v["refresh_token"], "1//refresh-secret");
}

#[test]
fn debug_output_redacts_tokens() {
    let shown = format!("{:?}", sample());
    assert!(!shown.contains(SECRET));
    assert!(!shown.contains("refresh-secret"));
    assert!(shown.contains("user@example.com"));
}

#[test]
fn load_accepts_absent_and_null_optional_fields() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    let json = r#"{"format":"devauth-tokens","version":1,"client_id":"c",
            "token_endpoint":"https://t","access_token":"a","token_type":"Bearer",
            "refresh_token":null,"expiry":null,"some_future_field":[1,2]}"#;
    fs::write(store.path(), json).unwrap();
    let t = store.load().unwrap().unwrap();
    assert_eq!(t.tokens.refresh_token, None);
    assert_eq!(t.tokens.expiry, None);
    assert!(t.tokens.scopes.is_empty());
}

// ---- write path ----

#[test]
fn file_is_0600_and_created_directories_are_0700() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path().join("a/b/tokens.json"));
    store.save(&sample()).unwrap();
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
    assert_eq!(mode(store.path()), 0o600);
}

#[test]
fn an_existing_directory_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    store_in(&dir).save(&sample()).unwrap();
    assert_eq!(mode(dir.path()), 0o755);
}

#[test]
fn unchanged_save_does_not_touch_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    store.save(&sample()).unwrap();
    let before = fs::metadata(store.path()).unwrap();
    assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Unchanged);
    let after = fs::metadata(store.path()).unwrap();
    assert_eq!(
        (before.ino(), before.mtime(), before.mtime_nsec()),
        (after.ino(), after.mtime(), after.mtime_nsec())
    );
    assert_eq!(
        (before.ctime(), before.ctime_nsec()),
        (after.ctime(), after.ctime_nsec())
    );

    let mut changed = sample();
    changed.tokens.access_token = Secret::new("ya29.next");
    assert_eq!(store.save(&changed).unwrap(), SaveOutcome::Written);
    assert_ne!(fs::metadata(store.path()).unwrap().ino(), before.ino());
    assert_eq!(store.load().unwrap(), Some(changed));
    assert!(temps(dir.path()).is_empty());
}

#[test]
fn unchanged_save_puts_a_loosened_mode_back_to_0600() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    store.save(&sample()).unwrap();
    fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Unchanged);
    assert_eq!(mode(store.path()), 0o600);
}

#[test]
fn a_file_that_differs_only_in_formatting_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    store.save(&sample()).unwrap();
    let compact: Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
    fs::write(store.path(), serde_json::to_vec(&compact).unwrap()).unwrap();
    assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Written);
}

#[test]
fn stale_temps_are_removed_on_load_and_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    let own = std::process::id();
    let stale = [
        ".tokens.json.tmp.2147483647.0".to_string(), // no such process (above pid_max)
        format!(".tokens.json.tmp.{own}.999999"),    // ours, but no thread writes it
        ".tokens.json.tmp.garbage".to_string(),
        ".tokens.json.tmp.0.1".to_string(),
    ];
    let kept = [
        ".tokens.json.tmp.1.0",         // pid 1 is alive: may be mid-write
        ".other.json.tmp.2147483647.0", // another store's
        "tokens.json.lock",
        "tokens.json.bak",
    ];
    let plant = || {
        for n in stale.iter().map(String::as_str).chain(kept) {
            fs::write(dir.path().join(n), "x").unwrap();
        }
    };
    plant();
    assert_eq!(store.load().unwrap(), None);
    assert_eq!(temps(dir.path()), vec![".tokens.json.tmp.1.0"]);
    for n in kept {
        assert!(dir.path().join(n).exists(), "{n}");
    }
    plant();
    assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Written);
    assert_eq!(temps(dir.path()), vec![".tokens.json.tmp.1.0"]);
    plant();
    assert_eq!(store.save(&sample()).unwrap(), SaveOutcome::Unchanged);
    assert_eq!(temps(dir.path()), vec![".tokens.json.tmp.1.0"]);
}

#[test]
fn a_temp_file_being_written_by_this_process_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    let name = OsString::from(format!(".tokens.json.tmp.{}.888888", std::process::id()));
    let path = dir.path().join(&name);
    let temp = TempFile::register(path.clone(), name);
    fs::write(&path, "partial").unwrap();
    store.load().unwrap();
    assert!(path.exists(), "an in-flight temp file was removed");
    drop(temp); // not marked created: the guard leaves the file, cleanup now may take it
    store.load().unwrap();
    assert!(!path.exists());
}

#[test]
fn save_refuses_what_load_would_reject() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    let mut big = sample();
    big.tokens.access_token = Secret::new(SECRET.repeat(MAX_TOKEN_BYTES / SECRET.len() + 1));
    let err = store.save(&big).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("field `access_token` is longer than 16384 bytes")
    );
    assert!(!err.to_string().contains(SECRET));

    let mut empty = sample();
    empty.tokens.access_token = Secret::new("");
    let err = store.save(&empty).unwrap_err();
    assert!(
        err.to_string().contains("field `access_token` is empty"),
        "{err}"
    );

    let mut scopes = sample();
    scopes.tokens.scopes = vec!["s".into(); MAX_SCOPES + 1];
    assert!(matches!(
        store.save(&scopes),
        Err(StoreError::Invalid { .. })
    ));
    assert!(!store.path().exists());
    assert!(temps(dir.path()).is_empty());
}

fn fail_at(op: &'static str, step: &'static str) -> io::Result<()> {
    if op == step {
        Err(io::Error::from_raw_os_error(libc::ENOSPC))
    } else {
        Ok(())
    }
}

#[test]
fn a_failure_before_the_rename_keeps_the_old_file_and_removes_the_temp() {
    let faults: [(&str, Fault); 4] = [
        (OP_CREATE_TEMP, |op| fail_at(op, OP_CREATE_TEMP)),
        (OP_WRITE_TEMP, |op| fail_at(op, OP_WRITE_TEMP)),
        (OP_FSYNC_TEMP, |op| fail_at(op, OP_FSYNC_TEMP)),
        (OP_RENAME, |op| fail_at(op, OP_RENAME)),
    ];
    for (step, fault) in faults {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&minimal()).unwrap();
        let err = store.save_with(&sample(), Keying::Keep, fault).unwrap_err();
        match &err {
            StoreError::Io { path, op, source } => {
                assert_eq!((path.as_path(), *op), (store.path(), step));
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
            }
            other => panic!("{step}: {other}"),
        }
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("token store {}: {step}: ", store.path().display())));
        assert_eq!(store.load().unwrap(), Some(minimal()), "{step}");
        assert!(
            temps(dir.path()).is_empty(),
            "{step}: {:?}",
            temps(dir.path())
        );
    }
}

#[test]
fn a_directory_fsync_failure_is_reported_after_the_new_file_is_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    store.save(&minimal()).unwrap();
    let err = store
        .save_with(&sample(), Keying::Keep, |op| fail_at(op, OP_FSYNC_DIR))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Io { op: OP_FSYNC_DIR, path, .. } if path == dir.path()),
        "{err}"
    );
    assert_eq!(store.load().unwrap(), Some(sample()));
    assert!(temps(dir.path()).is_empty());
}

// ---- prepared saves ----

#[test]
fn a_prepared_save_reserves_room_then_commits_exactly_the_new_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    store.save(&minimal()).unwrap();
    let old_len = fs::metadata(store.path()).unwrap().len();
    let prepared = store.prepare_save().unwrap();
    // The temp file exists, 0600, with the room reserved; the token file is untouched.
    let names = temps(dir.path());
    assert_eq!(names.len(), 1, "{names:?}");
    let temp = dir.path().join(&names[0]);
    assert_eq!(mode(&temp), 0o600);
    assert_eq!(
        fs::metadata(&temp).unwrap().len(),
        2 * old_len + RESERVE_SLACK
    );
    assert_eq!(store.load().unwrap(), Some(minimal()));
    assert!(
        temp.exists(),
        "load removed an in-flight prepared temp file"
    );
    assert_eq!(prepared.commit(&sample()).unwrap(), SaveOutcome::Written);
    assert_eq!(fs::read(store.path()).unwrap(), encode(&sample()).unwrap());
    assert_eq!(store.load().unwrap(), Some(sample()));
    assert_eq!(mode(store.path()), 0o600);
    assert!(temps(dir.path()).is_empty());
}

#[test]
fn a_dropped_prepared_save_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path().join("state/tokens.json"));
    let prepared = store.prepare_save().unwrap();
    // A missing directory is created (0700) at preparation.
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    drop(prepared);
    assert!(temps(&dir.path().join("state")).is_empty());
    assert!(!store.path().exists());
    assert_eq!(store.load().unwrap(), None);
}

#[test]
fn a_failed_preparation_keeps_the_old_file_and_names_the_step() {
    let faults: [(&str, Fault); 2] = [
        (OP_CREATE_TEMP, |op| fail_at(op, OP_CREATE_TEMP)),
        (OP_RESERVE, |op| fail_at(op, OP_RESERVE)),
    ];
    for (step, fault) in faults {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&minimal()).unwrap();
        let err = store.prepare_save_with(Keying::Keep, fault).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("token store {}: {step}: ", store.path().display())),
            "{err}"
        );
        assert_eq!(store.load().unwrap(), Some(minimal()), "{step}");
        assert!(temps(dir.path()).is_empty(), "{step}");
    }
}

#[test]
fn a_failed_commit_keeps_the_old_file_and_removes_the_temp() {
    for step in [OP_WRITE_TEMP, OP_FSYNC_TEMP, OP_RENAME] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        store.save(&minimal()).unwrap();
        let prepared = store.prepare_save().unwrap();
        let fault: Fault = match step {
            OP_WRITE_TEMP => |op| fail_at(op, OP_WRITE_TEMP),
            OP_FSYNC_TEMP => |op| fail_at(op, OP_FSYNC_TEMP),
            _ => |op| fail_at(op, OP_RENAME),
        };
        let err = prepared.commit_with(&sample(), fault).unwrap_err();
        assert!(
            matches!(&err, StoreError::Io { op, .. } if *op == step),
            "{step}: {err}"
        );
        assert_eq!(store.load().unwrap(), Some(minimal()), "{step}");
        assert!(temps(dir.path()).is_empty(), "{step}");
    }
    // Content the format refuses is refused at commit, and nothing changes either.
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    store.save(&minimal()).unwrap();
    let mut empty = sample();
    empty.tokens.access_token = Secret::new("");
    let err = store.prepare_save().unwrap().commit(&empty).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    assert_eq!(store.load().unwrap(), Some(minimal()));
    assert!(temps(dir.path()).is_empty());
}

#[test]
fn reserving_allocates_and_the_fallback_filler_does_not_compress() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let file = File::create(&path).unwrap();
    reserve_space(&file, 1000).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 1000);
    assert!(reserve_space(&file, u64::MAX).is_err());
    // The filler written where fallocate is missing: exact length, no repeated 8-byte word
    // (so neither LZO nor zlib on UBIFS/JFFS2 can shrink it much).
    let f = filler(4099);
    assert_eq!(f.len(), 4099);
    let words: std::collections::HashSet<&[u8]> = f.chunks(8).collect();
    assert_eq!(words.len(), 4099usize.div_ceil(8));
}

#[test]
fn time_again_keeps_the_boot_id_and_rereads_the_clock() {
    let clock = FakeClock::new();
    let first = TimeNow::read(&clock);
    clock.sleep(Duration::from_secs(7));
    let later = first.again(&clock);
    assert_eq!(later.boot_id, first.boot_id);
    assert_eq!(later.boottime, first.boottime + Duration::from_secs(7));
}

const EFBIG_CHILD_ENV: &str = "DEVAUTH_STORE_EFBIG_CHILD";

/// A real write failure the kernel enforces even for root: RLIMIT_FSIZE makes write(2) fail
/// with EFBIG part-way through the temp file (like ENOSPC on a full partition). It runs in a
/// child process because the limit is process-wide.
#[test]
fn a_real_write_failure_keeps_the_old_file_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    store.save(&minimal()).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::tests::efbig_child", "--test-threads=1"])
        .env(EFBIG_CHILD_ENV, store.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(store.load().unwrap(), Some(minimal()));
    assert!(temps(dir.path()).is_empty());
}

/// The child half of the test above; does nothing when run normally.
#[test]
fn efbig_child() {
    let Some(path) = std::env::var_os(EFBIG_CHILD_ENV) else {
        return;
    };
    // SAFETY: plain libc calls on this (child) process; `lim` is a valid rlimit.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = 512;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let mut big = sample();
    big.tokens.access_token = Secret::new("x".repeat(4096));
    let err = TokenStore::new(path).save(&big).unwrap_err();
    assert!(
        matches!(&err, StoreError::Io { op: OP_WRITE_TEMP, source, .. }
                if source.raw_os_error() == Some(libc::EFBIG)),
        "{err}"
    );
}

#[test]
fn a_parent_that_is_a_file_is_an_error_naming_path_and_step() {
    // Root ignores chmod, so "cannot write here" is made with a file where a directory
    // should be.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, "x").unwrap();
    let store = TokenStore::new(blocker.join("sub/tokens.json"));
    let err = store.save(&sample()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Io { op: OP_CREATE_DIR, path, .. } if *path == blocker),
        "{err}"
    );
    assert!(
        err.to_string().contains("not-a-dir: create directory: "),
        "{err}"
    );
    assert!(matches!(
        store.load(),
        Err(StoreError::Io { op: "open", .. })
    ));
    assert!(matches!(
        store.lock(Duration::ZERO),
        Err(StoreError::Io { .. })
    ));
    assert_eq!(fs::read_to_string(&blocker).unwrap(), "x");
}

#[test]
fn a_directory_at_the_path_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    fs::create_dir(store.path()).unwrap();
    let err = store.load().unwrap_err();
    assert!(
        err.to_string()
            .ends_with("corrupt file: not a regular file"),
        "{err}"
    );
    let err = store.save(&sample()).unwrap_err();
    assert!(matches!(err, StoreError::Io { op: OP_RENAME, .. }), "{err}");
    assert!(temps(dir.path()).is_empty());
    assert!(store.path().is_dir());
}

#[test]
fn a_fifo_at_the_path_does_not_hang_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    let c = std::ffi::CString::new(store.path().as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
}

#[test]
fn a_path_without_a_file_name_is_an_error() {
    let store = TokenStore::new("/");
    assert!(matches!(
        store.save(&sample()),
        Err(StoreError::Io {
            op: "resolve path",
            ..
        })
    ));
}

#[test]
fn delete_removes_the_file_and_keeps_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    assert!(!store.delete().unwrap());
    store.save(&sample()).unwrap();
    drop(store.lock(Duration::ZERO).unwrap());
    assert!(store.delete().unwrap());
    assert!(!store.path().exists());
    assert!(dir.path().join("tokens.json.lock").exists());
    assert_eq!(store.load().unwrap(), None);
    assert!(!store.delete().unwrap());
}

// ---- corrupt files ----

fn load_bytes(bytes: &[u8]) -> StoreError {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    fs::write(store.path(), bytes).unwrap();
    let err = store.load().unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(SECRET), "secret leaked: {shown}");
    assert!(!shown.contains("SECRET"), "secret leaked: {shown}");
    err
}

fn corrupt_detail(bytes: &[u8]) -> String {
    match load_bytes(bytes) {
        StoreError::Corrupt { detail, .. } => detail,
        other => panic!("not Corrupt: {other}"),
    }
}

/// A valid file with `field` replaced by the raw JSON `value`.
fn with_field(field: &str, value: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&encode(&sample()).unwrap()).unwrap();
    let (outer, inner) = field.split_once('.').unwrap_or((field, ""));
    let replacement: Value = serde_json::from_str(value).unwrap();
    if inner.is_empty() {
        v[outer] = replacement;
    } else {
        v[outer][inner] = replacement;
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn empty_truncated_and_garbage_files_are_corrupt() {
    assert_eq!(corrupt_detail(b""), "the file is empty");
    let full = encode(&sample()).unwrap();
    let detail = corrupt_detail(&full[..full.len() / 2]);
    assert!(detail.starts_with("truncated JSON at line "), "{detail}");
    let detail = corrupt_detail(&[0x7b, 0xff, 0xfe, 0x00, 0x13]);
    assert_eq!(detail, "not UTF-8 text (invalid byte at offset 1)");
    let detail = corrupt_detail(b"hello world");
    assert_eq!(detail, "malformed JSON at line 1 column 1");
    assert_eq!(
        corrupt_detail(b"   \n"),
        "truncated JSON at line 2 column 0"
    );
    assert_eq!(corrupt_detail(b"[1, 2]"), "not a JSON object");
}

#[test]
fn a_syntax_error_right_after_a_token_does_not_quote_it() {
    let text = format!(r#"{{"format":"devauth-tokens","version":1,"access_token":"{SECRET}" x}}"#);
    let detail = corrupt_detail(text.as_bytes());
    assert!(
        detail.starts_with("malformed JSON at line 1 column "),
        "{detail}"
    );
}

#[test]
fn a_huge_file_is_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    File::create(store.path())
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    match store.load() {
        Err(StoreError::TooLarge { size, .. }) => assert_eq!(size, MAX_FILE_BYTES + 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn format_and_version_are_checked() {
    let detail = corrupt_detail(&with_field("format", r#""something-else""#));
    assert!(detail.contains("`format`"), "{detail}");
    let no_format = br#"{"version":1,"access_token":"x"}"#;
    assert!(corrupt_detail(no_format).contains("`format` is missing"));
    match load_bytes(&with_field("version", "2")) {
        StoreError::UnsupportedVersion { version: 2, .. } => {}
        other => panic!("{other}"),
    }
    let detail = corrupt_detail(&with_field("version", r#""1""#));
    assert_eq!(detail, "field `version` is not an unsigned integer");
    assert!(corrupt_detail(&with_field("version", "-1")).contains("`version`"));
    // A newer file's message tells the user what happened.
    let err = load_bytes(&with_field("version", "7"));
    assert!(
        err.to_string().contains("file version 7 is not supported"),
        "{err}"
    );
}

#[test]
fn a_token_in_a_wrong_typed_field_never_reaches_the_error() {
    let s = format!("\"{SECRET}\"");
    let cases = [
        ("scopes", s.clone(), "field `scopes` is not a list"),
        (
            "scopes",
            format!("[\"a\", [{s}]]"),
            "field `scopes[1]` is not a string",
        ),
        (
            "token_type",
            format!("[{s}]"),
            "field `token_type` is not a string",
        ),
        (
            "access_token",
            format!("{{\"v\": {s}}}"),
            "field `access_token` is not a string",
        ),
        (
            "refresh_token",
            format!("[{s}]"),
            "field `refresh_token` is not a string",
        ),
        ("expiry", s.clone(), "field `expiry` is not an object"),
        (
            "expiry.lifetime_secs",
            s.clone(),
            "field `expiry.lifetime_secs` is not an unsigned integer",
        ),
        (
            "expiry.obtained_unix",
            s.clone(),
            "field `expiry.obtained_unix` is not an integer",
        ),
        (
            "expiry.boot_id",
            format!("{{\"x\": {s}}}"),
            "field `expiry.boot_id` is not a string",
        ),
        ("account", "true".into(), "field `account` is not a string"),
        (
            "version",
            s.clone(),
            "field `version` is not an unsigned integer",
        ),
    ];
    for (field, value, want) in cases {
        assert_eq!(corrupt_detail(&with_field(field, &value)), want, "{field}");
    }
    let detail = corrupt_detail(&with_field("format", &s));
    assert!(detail.contains("not a devauth token file"), "{detail}");
}

#[test]
fn missing_empty_and_oversized_fields_are_corrupt() {
    let long = format!("\"{}\"", SECRET.repeat(MAX_TOKEN_BYTES / SECRET.len() + 1));
    let cases = [
        ("access_token", "null", "field `access_token` is missing"),
        ("access_token", "\"\"", "field `access_token` is empty"),
        ("client_id", "\"\"", "field `client_id` is empty"),
        (
            "token_endpoint",
            "null",
            "field `token_endpoint` is missing",
        ),
        (
            "expiry.lifetime_secs",
            "null",
            "field `expiry.lifetime_secs` is missing",
        ),
        (
            "expiry.obtained_boottime_ms",
            "-5",
            "field `expiry.obtained_boottime_ms` is not an unsigned integer",
        ),
        (
            "access_token",
            long.as_str(),
            "field `access_token` is longer than 16384 bytes",
        ),
        (
            "id_token",
            long.as_str(),
            "field `id_token` is longer than 16384 bytes",
        ),
    ];
    for (field, value, want) in cases {
        assert_eq!(corrupt_detail(&with_field(field, value)), want, "{field}");
    }
}

// ---- lock ----

#[test]
fn the_lock_excludes_a_second_locker_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    let held = store.lock(Duration::ZERO).unwrap();
    assert_eq!(held.path(), dir.path().join("tokens.json.lock"));
    assert_eq!(mode(held.path()), 0o600);

    // A second open of the lock file is a second lock owner (flock is per open file), just
    // as another process would be. The fake clock makes the wait instant.
    let clock = FakeClock::new();
    let err = store
        .lock_with_clock(Duration::from_secs(5), &clock)
        .unwrap_err();
    match &err {
        StoreError::LockTimeout { path, waited } => {
            assert_eq!(path, held.path());
            assert_eq!(*waited, Duration::from_secs(5));
        }
        other => panic!("{other}"),
    }
    assert_eq!(clock.slept.get(), Duration::from_secs(5));
    assert!(
        err.to_string()
            .contains("still locked by another process after 5.0s")
    );

    drop(held);
    assert!(store.lock(Duration::ZERO).is_ok());
}

#[test]
fn the_lock_works_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let other = store.clone();
    let t = std::thread::spawn(move || {
        let lock = other.lock(Duration::ZERO).unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        drop(lock);
    });
    locked_rx.recv().unwrap();
    assert!(matches!(
        store.lock(Duration::ZERO),
        Err(StoreError::LockTimeout { .. })
    ));
    release_tx.send(()).unwrap();
    t.join().unwrap();
    assert!(store.lock(Duration::ZERO).is_ok());
}

#[test]
fn the_lock_excludes_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir);
    let lock_path = dir.path().join("tokens.json.lock");
    let try_flock = || {
        Command::new("flock")
            .arg("--nonblock")
            .arg(&lock_path)
            .arg("true")
            .status()
    };
    let held = store.lock(Duration::ZERO).unwrap();
    let Ok(status) = try_flock() else {
        eprintln!("skipped: flock(1) from util-linux is not installed");
        return;
    };
    assert!(!status.success(), "another process took a held lock");
    drop(held);
    assert!(try_flock().unwrap().success());
}

#[test]
fn lock_creates_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::new(dir.path().join("state/tokens.json"));
    let _lock = store.lock(Duration::ZERO).unwrap();
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    store.save(&sample()).unwrap();
}
