//! The device's keys held by the TPM, through the real binary against the test server (which
//! verifies every DPoP proof and client assertion) with swtpm as the TPM: a DPoP pairing on a
//! TPM-sealed store makes its proof key in the TPM, refreshes in new processes and after a TPM
//! restart sign there too, the key file holds only the TPM's blob, and on another TPM it is
//! "pair again" like the tokens; a clear DPoP key from an earlier version is sealed with the
//! tokens at their next write; without sealing `pair` and `status` say the key is unprotected;
//! `client_key_file = "tpm:…"` makes the client key in the TPM for `private_key_jwt`; the agent
//! pairs with its DPoP key in the TPM and says so.
//!
//! The swtpm tests are skipped (with a note) where swtpm is not installed; CI sets
//! DEVAUTH_TEST_REQUIRE_SWTPM=1 so they cannot skip there.

mod common;

use common::tpm::{Swtpm, usable_or_skip, use_tpm};
use common::*;
use devauth::net::wire::base64url_decode;
use std::time::Duration;

/// A DPoP server (proofs verified, public clients' refresh tokens bound to the key), `dpop =
/// "on"`, codes approved at once; the store sealed with `seal` by a swtpm kept in
/// `<temp dir>/tpm-a`.
fn dpop_tpm_env(seal: &str) -> (Env, Swtpm) {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.dpop = Some(DpopPolicy::default()))
        .provider_toml("dpop = \"on\"")
        .start();
    let sim = Swtpm::start(&env.dir().join("tpm-a")).expect("start swtpm");
    use_tpm(&env.config, env.dir(), sim.socket(), seal, "");
    (env, sim)
}

/// Pairs with a 2 s access token (later ones live an hour).
fn pair_short(env: &Env) -> Output {
    env.server().set_behavior(|b| b.token_lifetime = Some(2));
    let out = env.pair();
    env.server().set_behavior(|b| b.token_lifetime = Some(3600));
    out
}

/// Until the 2 s token of [`pair_short`] is due for a refresh.
fn stale() {
    std::thread::sleep(Duration::from_millis(1100));
}

fn key_file(env: &Env) -> Value {
    let text = std::fs::read_to_string(env.dpop_key_path()).expect("the DPoP key file");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): the key is in clear"))
}

/// The `jwk` header of a compact JWS: its `x` and `y`, decoded.
fn proof_point(jws: &str) -> (Vec<u8>, Vec<u8>) {
    let header: Value =
        serde_json::from_slice(&base64url_decode(jws.split('.').next().unwrap()).unwrap()).unwrap();
    let jwk = &header["jwk"];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert!(jwk.get("d").is_none(), "a private key in a proof: {jwk}");
    let coordinate = |c: &str| base64url_decode(jwk[c].as_str().unwrap()).unwrap();
    (coordinate("x"), coordinate("y"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_dpop_key_in_the_tpm_signs_pairing_and_refreshes_across_processes_and_restarts() {
    if !usable_or_skip(
        "a_dpop_key_in_the_tpm_signs_pairing_and_refreshes_across_processes_and_restarts",
    ) {
        return;
    }
    let (env, sim) = dpop_tpm_env("tpm2");
    pair_short(&env)
        .stderr_has("tokens sealed: AES-256-GCM, the key held by the TPM (tpm2)")
        .stderr_has("DPoP key held by the TPM");
    let s = env.server().stats();
    assert_eq!((s.dpop_bound_tokens, s.dpop_refusals), (1, 0), "{s:?}");

    // On flash: the TPM's blob, nothing a key could be read from.
    let key = key_file(&env);
    assert_eq!(key["format"], "devauth-key");
    assert_eq!(key["kind"], "tpm2");
    assert_eq!(Env::mode(&env.dpop_key_path()), 0o600);
    let raw = std::fs::read_to_string(env.dpop_key_path()).unwrap();
    assert!(!raw.contains("PRIVATE KEY"), "{raw}");
    let blob = base64url_decode(key["blob"].as_str().unwrap()).unwrap();
    // TPM2B_PRIVATE (the TPM's encryption of the key for itself) then TPM2B_PUBLIC, which
    // holds the point every proof carries.
    let private_len = usize::from(u16::from_be_bytes([blob[0], blob[1]]));
    let public = &blob[2 + private_len..];
    let polls = env.polls();
    let (x, y) = proof_point(polls[0].header("dpop").expect("a proof on the poll"));
    assert!(
        contains(public, &x) && contains(public, &y),
        "the proofs' key is not this blob's"
    );
    assert!(
        !contains(&blob[..2 + private_len], &x),
        "the private part is not opaque"
    );

    env.run(&["status"])
        .code(exit::OK)
        .stdout_has("DPoP key:      held by the TPM");
    let status = env.run(&["status", "--json"]);
    let s: Value = serde_json::from_str(status.line()).unwrap();
    assert_eq!(s["dpop_key"], "tpm2", "{}", status.show());

    // A refresh in a new process: the bound refresh token needs the same key's proof.
    stale();
    let t1 = env.token();
    assert!(env.server().live_access_tokens().contains(&t1));
    assert_eq!(env.refreshes().len(), 1);
    assert_eq!(env.server().stats().dpop_key_mismatches, 0);
    let refresh = env.refreshes().pop().unwrap();
    assert_eq!(
        proof_point(refresh.header("dpop").unwrap()),
        (x.clone(), y.clone())
    );

    // The device reboots: the same TPM state, a new swtpm; proofs for another program and
    // `api` are signed by the TPM too.
    drop(sim);
    let _sim = Swtpm::start(&env.dir().join("tpm-a")).expect("restart swtpm");
    let userinfo = format!("{}/userinfo", env.base());
    env.run(&["api", &userinfo])
        .code(exit::OK)
        .stdout_has("user@example.test");
    let out = env.run(&["token", "--header", "--dpop-proof", "GET", &userinfo]);
    out.code(exit::OK);
    let proof = out.stdout.lines().nth(1).expect("a proof line").to_string();
    assert_eq!(proof_point(&proof), (x, y));
    let s = env.server().stats();
    assert_eq!((s.dpop_refusals, s.dpop_key_mismatches), (0, 0), "{s:?}");

    // Unpairing forgets the key with the tokens.
    env.run(&["unpair"]).code(exit::OK).stdout_has("revoked");
    assert!(!env.dpop_key_path().exists());
}

#[test]
fn a_store_and_its_tpm_key_on_another_tpm_mean_pair_again_and_pairing_makes_a_new_key() {
    if !usable_or_skip(
        "a_store_and_its_tpm_key_on_another_tpm_mean_pair_again_and_pairing_makes_a_new_key",
    ) {
        return;
    }
    let (env, sim_a) = dpop_tpm_env("tpm2");
    pair_short(&env);
    let old_key = std::fs::read(env.dpop_key_path()).unwrap();
    // The flash moved to another board: another TPM.
    let sim_b = Swtpm::start(&env.dir().join("tpm-b")).expect("start swtpm");
    let text = env.config_file().replace(
        &sim_a.socket().display().to_string(),
        &sim_b.socket().display().to_string(),
    );
    env.write_config(&text);
    stale();
    let out = env.run(&["token"]);
    out.code(exit::PAIR_AGAIN)
        .stderr_has("sealed on another device")
        .stderr_has("pair again");
    assert!(out.stdout.is_empty(), "{}", out.show());
    env.run(&["api", &format!("{}/userinfo", env.base())])
        .code(exit::PAIR_AGAIN);
    assert_eq!(std::fs::read(env.dpop_key_path()).unwrap(), old_key);

    // Pairing on this board: the old key is of no use here and is replaced by one in this TPM.
    let out = pair_short(&env);
    out.stderr_has("cannot be used on this device; a new one is made")
        .stderr_has("TPM_RC_INTEGRITY");
    assert_ne!(std::fs::read(env.dpop_key_path()).unwrap(), old_key);
    assert_eq!(key_file(&env)["kind"], "tpm2");
    stale();
    let t = env.token();
    assert!(env.server().live_access_tokens().contains(&t));
    let s = env.server().stats();
    assert_eq!(
        (s.dpop_bound_tokens, s.dpop_refusals, s.dpop_key_mismatches),
        (3, 0, 0),
        "two pairings and a refresh, all bound: {s:?}"
    );
}

#[test]
fn a_clear_dpop_key_from_an_earlier_version_is_sealed_with_the_tokens_at_their_next_write() {
    if !usable_or_skip(
        "a_clear_dpop_key_from_an_earlier_version_is_sealed_with_the_tokens_at_their_next_write",
    ) {
        return;
    }
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.dpop = Some(DpopPolicy::default()))
        .provider_toml("dpop = \"on\"")
        .start();
    // No TPM at the test config's tpm_device: the key in clear, and said so.
    pair_short(&env)
        .stderr_has("NOT protected by hardware")
        .stderr_has("the DPoP key")
        .stderr_has("a 0600 file that a flash dump copies along with the tokens");
    let pem = std::fs::read_to_string(env.dpop_key_path()).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has("DPoP key:      NOT protected by hardware");
    let status = env.run(&["status", "--json"]);
    let s: Value = serde_json::from_str(status.line()).unwrap();
    assert_eq!(s["dpop_key"], "none", "{}", status.show());

    // The device gains a TPM (`auto` finds it): the next refresh seals tokens and key.
    let sim = Swtpm::start(&env.dir().join("tpm")).expect("start swtpm");
    use_tpm(&env.config, env.dir(), sim.socket(), "auto", "");
    stale();
    let t = env.token();
    let key = key_file(&env);
    assert_eq!(
        (key["kind"].as_str(), key["sealed_by"].as_str()),
        (Some("sealed"), Some("tpm2"))
    );
    let store: Value = serde_json::from_str(&std::fs::read_to_string(&env.store).unwrap()).unwrap();
    assert_eq!(
        key["sealed_key"], store["sealed_key"],
        "one data key for both"
    );
    let raw = std::fs::read_to_string(env.dpop_key_path()).unwrap();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!raw.contains(line), "the clear key is still readable");
    }
    // The same key still signs: the resource checks the proof's key against the token's.
    env.run(&["api", &format!("{}/userinfo", env.base())])
        .code(exit::OK);
    assert!(env.server().live_access_tokens().contains(&t));
    env.run(&["status"])
        .code(exit::OK)
        .stdout_has("DPoP key:      sealed with the tokens (AES-256-GCM, the key held by the TPM)");
    let s = env.server().stats();
    assert_eq!((s.dpop_refusals, s.dpop_key_mismatches), (0, 0), "{s:?}");
    assert_eq!(s.device_codes_issued, 1, "no new pairing");
}

/// A generic env whose config uses `private_key_jwt` with `client_key_file = "<key>"`, sealing
/// with a swtpm.
fn tpm_client_key(key: &str) -> (Env, Swtpm) {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .provider_toml(&format!(
            "client_auth = \"private_key_jwt\"\nclient_key_file = \"{key}\"\n"
        ))
        .start();
    let sim = Swtpm::start(&env.dir().join("tpm")).expect("start swtpm");
    use_tpm(&env.config, env.dir(), sim.socket(), "tpm2", "");
    (env, sim)
}

#[test]
fn keygen_in_the_tpm_and_private_key_jwt_end_to_end() {
    if !usable_or_skip("keygen_in_the_tpm_and_private_key_jwt_end_to_end") {
        return;
    }
    let (env, sim) = tpm_client_key("tpm:keys/client.tpm");
    let out = env.run(&["keygen"]);
    out.code(exit::OK).stderr_has("register the public key");
    let jwk = out.json();
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str()),
        (Some("EC"), Some("ES256"))
    );
    assert!(jwk.get("d").is_none(), "never the private key: {jwk}");
    let file = env.dir().join("keys/client.tpm");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["kind"], "tpm2");
    env.run(&["keygen"])
        .code(exit::CONFIG)
        .stderr_has("already holds a key");
    assert_eq!(env.run(&["keygen", "--public"]).code(exit::OK).json(), jwk);

    env.server()
        .set_behavior(|b| b.client_keys = vec![jwk.clone()]);
    env.pair();
    let assertions = env
        .server()
        .requests()
        .iter()
        .filter_map(|r| r.form_value("client_assertion").map(str::to_string))
        .count();
    assert!(assertions >= 2, "device authorization and the poll(s)");
    let t = env.token();
    assert!(env.server().live_access_tokens().contains(&t));
    env.run(&["unpair"]).code(exit::OK).stdout_has("revoked");
    let s = env.server().stats();
    assert_eq!(
        s.client_assertion_refusals,
        0,
        "{:?}",
        env.server().assertion_refusals()
    );
    assert!(s.client_assertions >= 4, "{s:?}");
    assert!(file.exists(), "unpairing keeps the device's identity");

    // On another board the blob is useless: the assertion cannot be signed.
    drop(sim);
    let other = Swtpm::start(&env.dir().join("tpm-b")).expect("start swtpm");
    let text = env.config_file().replace(
        &env.dir().join("tpm").join("tpm.sock").display().to_string(),
        &other.socket().display().to_string(),
    );
    env.write_config(&text);
    env.run(&["pair", "--json"])
        .stderr_has("made by another TPM")
        .stderr_has("run `devauth keygen` and register the new public key");
}

#[test]
fn client_key_file_tpm_keeps_the_blob_beside_the_store_and_refuses_a_software_key() {
    if !usable_or_skip(
        "client_key_file_tpm_keeps_the_blob_beside_the_store_and_refuses_a_software_key",
    ) {
        return;
    }
    let (env, _sim) = tpm_client_key("tpm");
    let jwk = env.run(&["keygen"]).code(exit::OK).json();
    let blob = env.store.with_file_name("client-key.tpm");
    assert!(blob.exists(), "no blob at {}", blob.display());
    assert_eq!(env.run(&["keygen", "--public"]).code(exit::OK).json(), jwk);
    // A software key where the config asks for the TPM: refused, not used.
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(
        &blob,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    env.run(&["keygen", "--public"])
        .code(exit::CONFIG)
        .stderr_has("asks for a key in the TPM");
}

#[test]
fn the_agent_pairs_with_a_dpop_key_in_the_tpm_and_says_so() {
    if !usable_or_skip("the_agent_pairs_with_a_dpop_key_in_the_tpm_and_says_so") {
        return;
    }
    let run = tempfile::tempdir().unwrap();
    let published = run.path().join("access_token");
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| b.dpop = Some(DpopPolicy::default()))
        .provider_toml("dpop = \"on\"")
        .toml(&format!(
            "[display]\nbackend = \"none\"\n[agent]\ntoken_file = \"{}\"\npaired_screen_secs = 0\n",
            published.display()
        ))
        .start();
    let sim = Swtpm::start(&env.dir().join("tpm")).expect("start swtpm");
    use_tpm(&env.config, env.dir(), sim.socket(), "tpm2", "");
    let agent = env
        .cmd(&["run", "--json"])
        .timeout(scaled(Duration::from_secs(60)))
        .spawn();
    assert!(
        wait_until(scaled(Duration::from_secs(30)), || {
            std::fs::read_to_string(&published).is_ok_and(|t| t.starts_with("DPoP "))
        }),
        "no DPoP token published"
    );
    agent.signal(libc::SIGTERM);
    let out = agent.wait();
    out.code(exit::OK)
        .stderr_has("tokens sealed: AES-256-GCM, the key held by the TPM (tpm2)")
        .stderr_has("DPoP key held by the TPM");
    assert_eq!(key_file(&env)["kind"], "tpm2");
    let s = env.server().stats();
    assert_eq!((s.dpop_bound_tokens, s.dpop_refusals), (1, 0), "{s:?}");
}
