//! The fuzz entry points, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the
//! corpus replay in the normal test suite (`tests/fuzz_corpus.rs` includes this file), so both
//! run exactly the same code on the same bytes.
//!
//! Each entry point feeds untrusted bytes to the public parser that sees them in production and
//! then checks what must hold whatever the input: no panic, values within their documented
//! bounds, no control characters in anything that is drawn, anything the store can read it can
//! write again, and no secret (a token, the device code, the client secret) quoted in an error
//! message. A failed check panics, which the fuzzer reports as a crash.
//!
//! Wire inputs start with one byte naming the Content-Type the body came with (`j` JSON, `f`
//! form, `h` HTML, `J` JSON with a charset, anything else: none), then the body.
#![allow(dead_code)]

use devauth::net::transport::check_scheme;
use devauth::net::wire::{self, DeviceAuthorization, Discovery, Fields, OAuthError, TokenResponse};
use devauth::oauth::flow::{Action, Event, Flow, Input, Policy, PollAnswer};
use devauth::secret::Secret;
use devauth::store::{self, StoredTokens, TimeNow};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Splits a wire input into (content type, body).
fn split(data: &[u8]) -> (Option<&'static str>, &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return (None, data);
    };
    let ct = match first {
        b'j' => Some("application/json"),
        b'f' => Some("application/x-www-form-urlencoded"),
        b'h' => Some("text/html; charset=utf-8"),
        b'J' => Some("application/json; charset=UTF-8"),
        _ => None,
    };
    (ct, body)
}

/// Whether finding `s` in a message could be no accident: 8+ characters, no whitespace, letters
/// and digits (messages are made of words and numbers, so a fuzzed "secret" that is a piece of
/// a message template must not count).
fn looks_secret(s: &str) -> bool {
    s.len() >= 8
        && !s.chars().any(char::is_whitespace)
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars().any(|c| c.is_alphabetic())
}

/// String values of `keys` in a JSON body that appear exactly once in it and look like secrets
/// (see [`looks_secret`]): those must never be quoted back.
fn unique_json_secrets(body: &[u8], keys: &[&str]) -> Vec<String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(body);
    keys.iter()
        .filter_map(|k| map.get(*k).and_then(|v| v.as_str()))
        .filter(|s| looks_secret(s) && text.matches(*s).count() == 1)
        .map(str::to_string)
        .collect()
}

fn assert_no_secret(message: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !message.contains(s.as_str()),
            "an error message quotes a secret: {message:?}"
        );
    }
}

fn assert_drawable(what: &str, s: &str) {
    assert!(
        !s.chars().any(wire::is_forbidden_char),
        "{what} has control characters: {s:?}"
    );
}

const WIRE_SECRETS: [&str; 4] = ["access_token", "refresh_token", "id_token", "device_code"];

/// A fixed "now" for the pure parts (flow, expiry).
fn time_now() -> TimeNow {
    TimeNow {
        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        boot_id: Some("fuzz-boot".into()),
        boottime: Duration::from_secs(1000),
    }
}

/// RFC 8628 §3.2 device authorization response, then the pure flow on what it yields.
pub fn device_authorization(data: &[u8]) {
    let (ct, body) = split(data);
    let secrets = unique_json_secrets(body, &WIRE_SECRETS);
    let fields = match Fields::parse(body, ct) {
        Ok(f) => f,
        Err(e) => return assert_no_secret(&e.to_string(), &secrets),
    };
    for allow_loopback in [false, true] {
        let check = |u: &str| check_scheme(u, allow_loopback);
        match DeviceAuthorization::parse(&fields, &check) {
            Ok(auth) => {
                assert!(auth.user_code.len() <= wire::MAX_USER_CODE_LEN);
                assert!(!auth.user_code.is_empty());
                assert_eq!(auth.user_code.trim(), auth.user_code);
                assert_drawable("user_code", &auth.user_code);
                assert_drawable("verification_uri", &auth.verification_uri);
                assert!(check(&auth.verification_uri).is_ok());
                assert!(check(auth.qr_payload()).is_ok());
                if let Some(m) = &auth.message {
                    assert_drawable("message", m);
                }
                let dc = auth.device_code.expose();
                assert!(!dc.is_empty() && dc.len() <= wire::MAX_TOKEN_LEN);
                assert!(dc.bytes().all(|b| (0x20..=0x7e).contains(&b)));
                run_flow(auth, OAuthError::parse(&fields));
            }
            Err(e) => assert_no_secret(&e.to_string(), &secrets),
        }
    }
    if let Some(err) = OAuthError::parse(&fields) {
        check_oauth_error(&err, &secrets);
    }
}

/// The flow with this code: the first poll answered with `answer` (when the body was also an
/// error), then time running out. Interval and lifetime must come out clamped.
fn run_flow(auth: DeviceAuthorization, answer: Option<OAuthError>) {
    let policy = Policy::default();
    let start = Duration::from_secs(100);
    let flow = Flow::new(policy.clone(), start, 7);
    let (flow, step) = flow.step(Input::Tick, start);
    assert_eq!(step.action, Action::RequestCode);
    let (mut flow, step) = flow.step(Input::CodeIssued(auth), start);
    for event in &step.events {
        if let Event::Code {
            expires_in,
            interval,
            ..
        } = event
        {
            assert!((1..=policy.max_code_lifetime.as_secs()).contains(expires_in));
            assert!(
                (policy.min_interval.as_secs()..=policy.max_initial_interval.as_secs())
                    .contains(interval)
            );
        }
    }
    let mut now = start;
    let mut answer = answer;
    // A handful of steps: enough to poll, get the answer and reach the deadline.
    for _ in 0..8 {
        let (next, step) = flow.step(Input::Tick, now);
        flow = next;
        match step.action {
            Action::WaitUntil(t) => {
                assert!(t >= now, "asked to wait until the past");
                assert!(t - now <= policy.max_code_lifetime + policy.max_interval);
                now = t;
            }
            Action::Poll => {
                let input = match answer.take() {
                    Some(err) => Input::PollAnswered(PollAnswer::Error(err)),
                    None => Input::PollFailed(devauth::oauth::flow::Failure::Transient {
                        reason: "fuzz".into(),
                        retry_after: Some(Duration::from_secs(u64::MAX / 4)),
                    }),
                };
                let (next, step) = flow.step(input, now);
                flow = next;
                for event in &step.events {
                    if let Event::SlowDown { interval } = event {
                        assert!(*interval <= policy.max_interval.as_secs());
                    }
                }
            }
            Action::RequestCode | Action::Finish => break,
        }
    }
}

fn check_oauth_error(err: &OAuthError, secrets: &[String]) {
    assert!(!err.error.is_empty() && err.error.chars().count() <= 128);
    assert!(
        err.error.chars().all(|c| c.is_ascii_graphic()) || err.error == "(empty error code)",
        "error code {:?}",
        err.error
    );
    if let Some(d) = &err.description {
        assert_drawable("error_description", d);
        assert!(d.chars().count() <= wire::MAX_TEXT_LEN);
    }
    // The description is the server's own text and may say anything; the code must not quote
    // a token we would otherwise keep.
    let _ = secrets;
}

/// RFC 6749 §5.1 / §5.2 token and error responses (and the OIDC discovery document, which the
/// same parser reads), the HTTP `Date` header, and the token set built from them, which the
/// store must be able to write.
pub fn token_response(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(t) = wire::parse_http_date(s) {
            assert!(t >= 0);
        }
    }
    let (ct, body) = split(data);
    let secrets = unique_json_secrets(body, &WIRE_SECRETS);
    let fields = match Fields::parse(body, ct) {
        Ok(f) => f,
        Err(e) => return assert_no_secret(&e.to_string(), &secrets),
    };
    if let Some(err) = OAuthError::parse(&fields) {
        check_oauth_error(&err, &secrets);
    }
    let _ = Discovery::parse(&fields);
    let _ = wire::account_from_claims(&fields);
    match TokenResponse::parse(&fields) {
        Ok(t) => {
            assert_eq!(t.token_type, "Bearer");
            for s in [
                Some(&t.access_token),
                t.refresh_token.as_ref(),
                t.id_token.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                let v = s.expose();
                assert!(!v.is_empty() && v.len() <= wire::MAX_TOKEN_LEN);
                assert!(v.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            }
            let account = t
                .id_token
                .as_ref()
                .and_then(|id| wire::id_token_claims(id).ok())
                .and_then(|c| wire::account_from_claims(&c));
            let date = Some(1_800_000_000 + i64::from(body.len() as u32));
            let tokens = devauth::grant::token_set(t, None, date, &time_now(), account);
            let stored = StoredTokens {
                client_id: "fuzz-client".into(),
                token_endpoint: "https://fuzz.example/token".into(),
                tokens,
                grant_refused: None,
            };
            let path = Path::new("/fuzz/tokens.json");
            // What the server granted must be storable: failing here would lose the grant.
            if let Err(e) = store::encode_bytes(&stored, path) {
                panic!("a token answer the wire accepts cannot be stored: {e}");
            }
            if let Some(exp) = &stored.tokens.expiry {
                let left = exp.remaining(&time_now());
                assert!(left.is_none_or(|d| d.as_secs() <= exp.lifetime_secs));
            }
        }
        Err(e) => assert_no_secret(&e.to_string(), &secrets),
    }
}

/// id_token claims (display only) and the base64url codec under them.
pub fn id_token(data: &[u8]) {
    // The codec round-trips any bytes.
    let encoded = wire::base64_encode(data);
    assert_eq!(wire::base64url_decode(&encoded).as_deref(), Some(data));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(bytes) = wire::base64url_decode(text) {
        let again = wire::base64_encode(&bytes);
        assert_eq!(wire::base64url_decode(&again), Some(bytes));
    }
    let token = Secret::new(text);
    match wire::id_token_claims(&token) {
        Ok(claims) => {
            if let Some(account) = wire::account_from_claims(&claims) {
                assert!(account.len() <= 256);
                assert_drawable("account", &account);
            }
        }
        Err(e) => {
            if looks_secret(text) {
                assert!(!e.to_string().contains(text), "the id_token was quoted");
            }
        }
    }
}

/// The config file (TOML), as `Config::load` passes it on. Relative paths resolve under a
/// directory that does not exist.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Absolute paths could name real files: only ever read them, and never a FIFO or a
    // device that blocks (fuzz inputs naming /dev or /proc are skipped).
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") {
        return;
    }
    let source = Path::new("/nonexistent-devauth-fuzz/devauth.toml");
    let secret = text
        .split("client_secret = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|s| looks_secret(s) && text.matches(*s).count() == 1)
        .map(str::to_string);
    match devauth::config::Config::parse(text, source) {
        Ok(c) => {
            assert!(c.network.max_body_bytes >= 1024 && c.network.max_body_bytes <= 1 << 20);
            assert!(c.network.timeout >= Duration::from_secs(1));
            assert!(c.network.connect_timeout >= Duration::from_secs(1));
            assert!(c.storage.path.is_absolute());
        }
        Err(e) => {
            assert!(
                e.line()
                    .is_none_or(|l| l >= 1 && l <= text.lines().count().max(1) + 1)
            );
            if let Some(s) = secret {
                assert!(
                    !e.to_string().contains(&s),
                    "the client secret was quoted: {e}"
                );
            }
        }
    }
}

/// The token store file: what can be read can be written again (and reads back the same), and
/// no error quotes a token.
pub fn store_file(data: &[u8]) {
    let path = Path::new("/fuzz/tokens.json");
    match store::parse_bytes(data, path) {
        Ok(t) => {
            let bytes = match store::encode_bytes(&t, path) {
                Ok(b) => b,
                Err(e) => panic!("a token file the store reads cannot be written again: {e}"),
            };
            let back = store::parse_bytes(&bytes, path)
                .unwrap_or_else(|e| panic!("written bytes do not read back: {e}"));
            assert_eq!(back, t);
            if let Some(exp) = &t.tokens.expiry {
                let left = exp.remaining(&time_now());
                assert!(left.is_none_or(|d| d.as_secs() <= exp.lifetime_secs));
            }
        }
        Err(e) => {
            let secrets = unique_json_secrets(data, &["access_token", "refresh_token", "id_token"]);
            assert_no_secret(&e.to_string(), &secrets);
        }
    }
}

/// Counts the pixels a pack draws and keeps none.
struct Pixels(u64);

impl embedded_graphics::prelude::OriginDimensions for Pixels {
    fn size(&self) -> embedded_graphics::prelude::Size {
        embedded_graphics::prelude::Size::new(480, 320)
    }
}

impl embedded_graphics::prelude::DrawTarget for Pixels {
    type Color = embedded_graphics::pixelcolor::Rgb565;
    type Error = core::convert::Infallible;
    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = embedded_graphics::Pixel<Self::Color>>,
    {
        self.0 += pixels.into_iter().count() as u64;
        Ok(())
    }
}

/// A locale pack (a file in `[display] locale_dir`): refused, or every sentence laid out at every
/// size and width a screen asks for and drawn, with names of either direction, without a panic;
/// lines stay within their width unless a single word is wider.
pub fn locale_pack(data: &[u8]) {
    use devauth::locale::{Ink, Pack, SlotValue};
    use embedded_graphics::pixelcolor::{Rgb565, RgbColor};
    let Ok(pack) = Pack::parse(data.to_vec().into()) else {
        return;
    };
    let keys: Vec<String> = pack.keys().take(64).map(String::from).collect();
    let ink = Ink {
        fg: Rgb565::WHITE,
        bg: Rgb565::BLACK,
        bold: data.len() % 2 == 0,
    };
    let mut target = Pixels(0);
    for (n, tier) in pack.tiers().take(8).enumerate() {
        for key in &keys {
            let _ = pack.text(key);
            for (width, rtl) in [(1, false), (120, true), (400, false)] {
                let slot = |_: &str| Some(SlotValue { width: 37, rtl });
                let Some(lines) = pack.balanced_lines(key, &tier, width, &slot) else {
                    continue;
                };
                for line in &lines {
                    if n < 2 {
                        let _ = pack.draw_line(
                            &tier,
                            line,
                            embedded_graphics::prelude::Point::new(5, 5),
                            ink,
                            &mut target,
                        );
                    }
                }
            }
        }
        let _ = pack.plain_width(&tier, "12:34");
        let _ = pack.draw_plain(
            &tier,
            "12:34",
            embedded_graphics::prelude::Point::zero(),
            ink,
            &mut target,
        );
    }
}

/// The data key the `sealed_file` seeds were sealed with (fuzz/corpus/sealed_file/): the fuzzer
/// has no TPM, so the key is given, and the seeds carry valid ciphertext for it.
pub const FUZZ_DATA_KEY: [u8; 32] = [0x5e; 32];

/// The sealed token file: its envelope parser and the opening with a known data key never
/// panic; what opens can be sealed again and opens to the same tokens; errors never quote a
/// token or the envelope's binary fields.
pub fn sealed_file(data: &[u8]) {
    let path = Path::new("/fuzz/tokens.json");
    match store::open_sealed_bytes(data, &FUZZ_DATA_KEY, path) {
        Ok(t) => {
            let bytes = store::seal_bytes(&t, store::Sealer::Tpm2, &[7; 208], &FUZZ_DATA_KEY, path)
                .unwrap_or_else(|e| panic!("a sealed file that opens cannot be sealed again: {e}"));
            let back = store::open_sealed_bytes(&bytes, &FUZZ_DATA_KEY, path)
                .unwrap_or_else(|e| panic!("a file sealed again does not open: {e}"));
            assert_eq!(back, t);
        }
        Err(e) => {
            let secrets = unique_json_secrets(data, &["sealed_key", "nonce", "ciphertext"]);
            assert_no_secret(&e.to_string(), &secrets);
        }
    }
    key_file(data);
}

/// The same bytes as a DPoP key file (`store::keyfile`): what opens is written again and opens
/// to the same key; errors name no value.
fn key_file(data: &[u8]) {
    let path = Path::new("/fuzz/tokens.json.dpop-key");
    match store::keyfile::open_key_bytes(data, &FUZZ_DATA_KEY, path) {
        Ok(key) => {
            let sealable = match &key {
                store::keyfile::StoredKey::Software(pem) => {
                    pem.expose().len() <= store::keyfile::MAX_SEALED_KEY_TEXT
                }
                store::keyfile::StoredKey::Tpm(_) => true,
            };
            let sealed = Some((store::Sealer::Kernel, &[7u8; 236][..], &FUZZ_DATA_KEY));
            for how in [None, sealed.filter(|_| sealable)] {
                let bytes = store::keyfile::key_bytes(&key, how, path)
                    .unwrap_or_else(|e| panic!("a key file that opens cannot be written: {e}"));
                let back = store::keyfile::open_key_bytes(&bytes, &FUZZ_DATA_KEY, path)
                    .unwrap_or_else(|e| panic!("a key file written again does not open: {e}"));
                assert_eq!(back, key);
            }
        }
        Err(e) => {
            let secrets = unique_json_secrets(data, &["blob", "sealed_key", "nonce", "ciphertext"]);
            assert_no_secret(&e.to_string(), &secrets);
        }
    }
}

/// One fuzz entry point.
pub type Target = fn(&[u8]);

/// Every entry point by name (the corpus replay walks `fuzz/corpus/<name>/`).
pub const TARGETS: [(&str, Target); 7] = [
    ("device_authorization", device_authorization),
    ("token_response", token_response),
    ("id_token", id_token),
    ("config", config),
    ("store_file", store_file),
    ("locale_pack", locale_pack),
    ("sealed_file", sealed_file),
];
