//! Several accounts in one config (`[accounts.NAME]`) end to end: one agent pairs and renews
//! them all against the test server (one of them against a second server: another provider),
//! each with its own store and token file; `unpair --account` leaves the others; `token
//! --account`, `status` listing them all; the socket serves named accounts to the clients
//! `[[agent.client]] accounts` allows; `pair --account` says which account is being added.

mod common;

use common::agent::*;
use common::socket::*;
use devauth_testserver::{Behavior, TestServer};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// The kids' account uses the top-level provider (another person, same service); the music
/// account has its own provider on a second server.
fn accounts(music: &TestServer) -> String {
    let m = music.base_url();
    format!(
        "[accounts.default]\nlabel = \"Parents\"\n\
         [accounts.kids]\nlabel = \"Kids\"\n\
         [accounts.music.provider]\nclient_id = \"devauth-test\"\nallow_http_loopback = true\n\
         device_authorization_endpoint = \"{m}/device/code\"\ntoken_endpoint = \"{m}/token\"\n\
         revocation_endpoint = \"{m}/revoke\"\nscopes = [\"openid\", \"offline_access\"]\n"
    )
}

/// Events of the account `name` called `event`.
fn count(agent: &Agent, name: &str, event: &str) -> usize {
    agent
        .events()
        .iter()
        .filter(|e| e["event"] == event && e["account_name"] == name)
        .count()
}

fn wait_for(agent: &Agent, what: &str, pred: impl Fn(&Agent) -> bool) {
    let start = std::time::Instant::now();
    while !pred(agent) {
        assert!(
            start.elapsed() < common::scaled(std::time::Duration::from_secs(60)),
            "timed out waiting for {what}; events {:?}\nstderr {}",
            agent.events(),
            agent.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn named(path: &std::path::Path, name: &str) -> PathBuf {
    let text = path.display().to_string();
    PathBuf::from(match text.strip_suffix(".json") {
        Some(stem) => format!("{stem}.{name}.json"),
        None => format!("{text}.{name}"),
    })
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn one_agent_pairs_and_renews_every_account_and_unpairing_one_leaves_the_others() {
    let music = TestServer::start(fast(4)).expect("second test server");
    let env = AgentEnv::with(fast(4), &accounts(&music));
    let mut agent = env.start_agent();
    // One pairing screen at a time, every account paired, each renewed (4 s tokens).
    for name in ["default", "kids", "music"] {
        wait_for(&agent, &format!("{name} paired and renewed"), |a| {
            count(a, name, "paired") == 1 && count(a, name, "refreshed") >= 1
        });
    }
    let codes: Vec<String> = agent
        .events()
        .iter()
        .filter(|e| e["event"] == "code")
        .map(|e| e["account_name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(codes.len(), 3, "one code per account: {codes:?}");
    assert_eq!(
        music.stats().device_codes_issued,
        1,
        "the music account pairs at its own provider"
    );
    // Each account has its own store and token file.
    let files = [
        env.token_file.clone(),
        named(&env.token_file, "kids"),
        named(&env.token_file, "music"),
    ];
    let tokens: Vec<String> = files.iter().map(|f| read(f)).collect();
    assert_ne!(tokens[0], tokens[1]);
    assert!(named(&env.store, "kids").exists() && named(&env.store, "music").exists());
    assert!(
        music.access_token_scope(&tokens[2]).is_some(),
        "music's token is music's"
    );
    assert!(
        env.srv.access_token_scope(&tokens[1]).is_some(),
        "kids' token is the main server's"
    );

    // token --account: through the agent's socket (root is allowed everything by default).
    let out = env.devauth(&["token", "--account", "kids"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let kids_token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        [read(&files[1]), tokens[1].clone()].contains(&kids_token),
        "the kids' token, not another account's"
    );
    assert!(
        agent.stderr().contains("account kids"),
        "{}",
        agent.stderr()
    );

    // status lists them all, as text and as JSON.
    let out = env.devauth(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "Account default (Parents):",
        "Account kids (Kids):",
        "Account music:",
    ] {
        assert!(text.contains(line), "{text}");
    }
    let out = env.devauth(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["paired"], true, "{v}");
    let names: Vec<&str> = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "kids", "music"]);
    let out = env.devauth(&["status", "--account", "kids", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["paired"].clone(), v["account_name"].clone()),
        (Value::Bool(true), "kids".into())
    );

    // Unpairing the kids leaves the others alone; the agent pairs the kids again.
    let default_pairings = env.srv.stats().device_codes_issued;
    let out = env.devauth(&["unpair", "--account", "kids"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    wait_for(&agent, "kids unpaired and paired again", |a| {
        count(a, "kids", "unpaired") == 1 && count(a, "kids", "paired") == 2
    });
    assert_eq!(count(&agent, "default", "unpaired"), 0);
    assert_eq!(count(&agent, "music", "unpaired"), 0);
    assert_eq!(count(&agent, "default", "paired"), 1);
    assert_eq!(
        env.srv.stats().device_codes_issued,
        default_pairings + 1,
        "only the kids pair again"
    );
    assert!(env.store.exists() && files[0].exists() && files[2].exists());
    // The hook ran for each account, told which one and its token file.
    let hook_env = std::fs::read_to_string(format!("{}.env", env.hook_log.display())).unwrap();
    assert!(hook_env.contains("DEVAUTH_ACCOUNT_NAME=kids"), "{hook_env}");
    assert!(hook_env.contains(&format!("DEVAUTH_TOKEN_FILE={}", files[2].display())));

    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit().code(), Some(0), "{}", agent.stderr());
}

#[test]
fn the_socket_serves_each_client_only_the_accounts_it_is_granted() {
    if !is_root() {
        eprintln!("skipped: needs root to run the clients as other users");
        return;
    }
    let music = TestServer::start(Behavior {
        scope_granted: Some("openid offline_access play".into()),
        ..fast(60)
    })
    .expect("second test server");
    let clients = format!(
        "socket_mode = \"0666\"\n\
         [[agent.client]]\nuser = \"{APP_UID}\"\naccounts = [\"music\"]\nscopes = [\"*\"]\n\
         [[agent.client]]\nuser = \"{OTHER_UID}\"\nscopes = [\"*\"]\n"
    );
    let env = AgentEnv::with(fast(60), &(clients + &accounts(&music)));
    open_dir(env.dir.path());
    let agent = env.start_agent();
    for name in ["default", "kids", "music"] {
        wait_for(&agent, &format!("{name} paired"), |a| {
            count(a, name, "paired") == 1
        });
    }
    let sock = env.socket();
    wait_socket(&sock);
    // The music app gets the music account, and nothing else.
    let r = get_as(APP_UID, &sock, "/v1/token?account=music");
    assert_eq!(r.token(), read(&named(&env.token_file, "music")));
    assert_eq!(r.body["scope"], "offline_access openid play");
    let r = get_as(APP_UID, &sock, "/v1/token?account=kids");
    assert_eq!(r.status, 403, "{r:?}");
    let r = get_as(APP_UID, &sock, "/v1/token");
    assert_eq!(
        r.status, 403,
        "the default account is not granted either: {r:?}"
    );
    // An entry without `accounts` has the default account only.
    let r = get_as(OTHER_UID, &sock, "/v1/token");
    assert_eq!(r.token(), read(&env.token_file));
    let r = get_as(OTHER_UID, &sock, "/v1/token?account=music");
    assert_eq!(r.status, 403, "{r:?}");
    let r = get_as(OTHER_UID, &sock, "/v1/token?account=nobody");
    assert_eq!((r.status, r.error()), (404, "unknown_account"), "{r:?}");
    // `devauth token --account` as the app: through the socket, by the same policy.
    let as_app = |account: &str| {
        command()
            .arg("-c")
            .arg(&env.config)
            .args(["token", "--account", account])
            .uid(APP_UID)
            .gid(APP_UID)
            .output()
            .unwrap()
    };
    let out = as_app("music");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = as_app("kids");
    assert_eq!(
        out.status.code(),
        Some(15),
        "refused by the policy: {out:?}"
    );
    // Status over the socket lists every account, never a token.
    let r = get_as(OTHER_UID, &sock, "/v1/status");
    assert_eq!(
        r.body["accounts"].as_array().map(Vec::len),
        Some(3),
        "{r:?}"
    );
    assert!(!r.body.to_string().contains(&read(&env.token_file)));
}

#[test]
fn pair_says_which_account_is_being_added() {
    let env = AgentEnv::with(fast(60), &accounts(&TestServer::start(fast(60)).unwrap()));
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replace("backend = \"none\"", "backend = \"terminal\""),
    )
    .unwrap();
    let out = env.devauth(&["pair", "--account", "kids"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let shown =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(shown.contains("Adding: Kids"), "{shown}");
    assert!(named(&env.store, "kids").exists());
    assert!(
        !env.store.exists(),
        "the default account is not paired by it"
    );
    // A name the file does not have is a configuration error that lists the names.
    let out = env.devauth(&["token", "--account", "guests"]);
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("default, kids, music"));
}

#[test]
fn accounts_stay_fresh_while_another_waits_for_its_person() {
    // Nobody approves the music account's code: its pairing screen stays up.
    let music = TestServer::start(Behavior::default()).expect("second test server");
    let env = AgentEnv::with(fast(4), &accounts(&music));
    let mut agent = env.start_agent();
    wait_for(&agent, "the others renewed while music waits", |a| {
        count(a, "music", "code") >= 1
            && count(a, "default", "refreshed") >= 2
            && count(a, "kids", "refreshed") >= 2
    });
    assert_eq!(count(&agent, "music", "paired"), 0);
    assert!(music.stats().polls >= 1, "music's code is being polled");
    let published = read(&env.token_file);
    assert!(env.srv.access_token_scope(&published).is_some());
    // SIGTERM ends the pairing and every account.
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit().code(), Some(0), "{}", agent.stderr());
}

#[test]
fn an_idle_agent_with_several_accounts_does_not_wake_up() {
    if std::env::var("DEVAUTH_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        eprintln!("skipped under an emulator: its own threads wake up");
        return;
    }
    let music = TestServer::start(fast(3600)).expect("second test server");
    let env = AgentEnv::with(fast(3600), &accounts(&music));
    let agent = env.start_agent();
    for name in ["default", "kids", "music"] {
        wait_for(&agent, &format!("{name} paired"), |a| {
            count(a, name, "paired") == 1
        });
    }
    // Past the paired screens (1 s) and the userinfo checks of the accounts that have one.
    env.wait_stats("the userinfo checks", |s| s.userinfo_ok >= 2);
    std::thread::sleep(std::time::Duration::from_secs(2));
    // 3 s on every run; DEVAUTH_IDLE_SECS=60 for the measurement in docs/benchmarks.md.
    let secs: u64 = std::env::var("DEVAUTH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let before = wakeups(agent.pid());
    std::thread::sleep(std::time::Duration::from_secs(secs));
    let after = wakeups(agent.pid());
    println!(
        "idle agent with 3 accounts, socket open: {} wake-ups (voluntary context switches) in \
         {secs} s",
        after - before
    );
    assert_eq!(after - before, 0, "wake-ups of an idle agent in {secs} s");
}

#[test]
fn a_code_nobody_approves_gives_the_screen_to_the_next_account_in_turn() {
    // The default account's codes live 2 s and nobody approves them; the kids' account (its
    // own provider) is approved at once. One pairing screen at a time, in turn: when the
    // default account's code expires, the kids get the screen.
    let kids = TestServer::start(fast(60)).expect("second test server");
    let env = AgentEnv::with(
        Behavior {
            expires_in: 2,
            ..Behavior::default()
        },
        &format!(
            "[accounts.kids.provider]\nclient_id = \"devauth-test\"\n\
             allow_http_loopback = true\ndevice_authorization_endpoint = \"{k}/device/code\"\n\
             token_endpoint = \"{k}/token\"\n",
            k = kids.base_url()
        ),
    );
    let mut agent = env.start_agent();
    wait_for(&agent, "the kids paired", |a| {
        count(a, "kids", "paired") == 1
    });
    assert_eq!(count(&agent, "default", "paired"), 0);
    assert!(
        agent
            .stderr()
            .contains("account default: the code expired unapproved")
    );
    // The default account has the screen again: a new code.
    wait_for(&agent, "the default account's next code", |a| {
        let codes: Vec<String> = a
            .events()
            .iter()
            .filter(|e| e["event"] == "code")
            .map(|e| e["account_name"].as_str().unwrap_or("").to_string())
            .collect();
        codes.iter().rposition(|n| n == "default") > codes.iter().position(|n| n == "kids")
    });
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit().code(), Some(0), "{}", agent.stderr());
}
