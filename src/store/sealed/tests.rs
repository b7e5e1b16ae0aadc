//! The sealed envelope without hardware: a data key given directly.

use super::*;

const KEY: [u8; 32] = [7; 32];

fn sample() -> StoredTokens {
    StoredTokens {
        client_id: "client-123".into(),
        token_endpoint: "https://oauth2.example.com/token".into(),
        tokens: TokenSet {
            access_token: Secret::new("at-SECRET-112233"),
            token_type: "Bearer".into(),
            refresh_token: Some(Secret::new("rt-SECRET-445566")),
            id_token: None,
            scopes: vec!["openid".into()],
            account: None,
            expiry: None,
        },
        grant_refused: None,
    }
}

fn sealed_file() -> Vec<u8> {
    seal_bytes(
        &sample(),
        Sealer::Tpm2,
        &[1; 208],
        &KEY,
        Path::new("t.json"),
    )
    .unwrap()
}

fn open_err(bytes: &[u8]) -> String {
    open_sealed_bytes(bytes, &KEY, Path::new("t.json"))
        .unwrap_err()
        .to_string()
}

fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&sealed_file()).unwrap();
    v[field] = value;
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn round_trip_with_the_key_and_only_with_it() {
    let bytes = sealed_file();
    assert!(is_sealed(&bytes));
    assert!(!is_sealed(b"{\"format\":\"devauth-tokens\"}"));
    assert!(!is_sealed(b"garbage"));
    assert_eq!(
        open_sealed_bytes(&bytes, &KEY, Path::new("t.json")).unwrap(),
        sample()
    );
    let wrong = open_sealed_bytes(&bytes, &[8; 32], Path::new("t.json")).unwrap_err();
    assert!(wrong.to_string().contains("do not decrypt"), "{wrong}");
    // Two writes of the same tokens differ (a fresh nonce) and both open.
    let again = sealed_file();
    assert_ne!(again, bytes);
    assert!(open_sealed_bytes(&again, &KEY, Path::new("t.json")).is_ok());
}

#[test]
fn the_envelope_fields_are_bound_to_the_ciphertext() {
    for (field, value) in [
        ("client_id", serde_json::json!("client-999")),
        (
            "token_endpoint",
            serde_json::json!("https://evil.example/token"),
        ),
        ("sealed_by", serde_json::json!("kernel")),
    ] {
        let err = open_err(&with(field, value));
        assert!(err.contains("do not decrypt"), "{field}: {err}");
    }
}

#[test]
fn malformed_envelopes_name_the_field_never_a_value() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (with("version", serde_json::json!(2)), "version 2"),
        (with("sealed_by", serde_json::json!("tee")), "`sealed_by`"),
        (with("nonce", serde_json::json!("AAAA")), "`nonce`"),
        (
            with("nonce", serde_json::json!("!!")),
            "`nonce` is not base64",
        ),
        (
            with("ciphertext", serde_json::json!("AAAA")),
            "authentication tag",
        ),
        (with("sealed_key", serde_json::json!("")), "`sealed_key`"),
        (
            with("client_id", serde_json::json!(5)),
            "`client_id` is not a string",
        ),
        (
            with("format", serde_json::json!("devauth-sealed")),
            "`format`",
        ),
        (
            b"{\"format\":\"devauth-sealed-tokens\"".to_vec(),
            "malformed",
        ),
        (b"[]".to_vec(), "not a JSON object"),
    ];
    for (bytes, says) in cases {
        let err = open_err(&bytes);
        assert!(err.contains(says), "want {says:?} in {err}");
        assert!(!err.contains("SECRET"), "{err}");
    }
}

#[test]
fn inside_and_outside_must_name_the_same_client() {
    // Sealed properly (the associated data matches the envelope) but over tokens of another
    // client: refused.
    let mut other = sample();
    other.client_id = "client-999".into();
    let plain = encode(&other).unwrap();
    let key = DataKey {
        sealer: Sealer::Tpm2,
        blob: vec![1; 208],
        key: SecretBytes::new(KEY.to_vec()),
    };
    let bytes = seal(&sample(), &plain, &key).unwrap();
    let err = open_err(&bytes);
    assert!(err.contains("belong to another client"), "{err}");
}

#[test]
fn the_hand_written_files_are_what_serde_json_pretty_prints() {
    let odd = "a \"quoted\" \\ tab\t nl\n ctl\u{1} é";
    let written = json_file(&[
        ("format", Json::Str(SEALED_FORMAT)),
        ("version", Json::Num(SEALED_VERSION)),
        ("client_id", Json::Str(odd)),
    ]);
    let mut expected = serde_json::to_vec_pretty(&serde_json::json!({
        "format": SEALED_FORMAT,
        "version": SEALED_VERSION,
        "client_id": odd,
    }))
    .unwrap();
    expected.push(b'\n');
    // serde_json's map sorts its keys; the hand-written file keeps the order it is given.
    let parsed: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(parsed["client_id"], odd);
    assert_eq!(
        serde_json::to_vec_pretty(&parsed).unwrap(),
        expected[..expected.len() - 1]
    );
    assert_eq!(
        String::from_utf8(written).unwrap(),
        format!(
            "{{\n  \"format\": \"{SEALED_FORMAT}\",\n  \"version\": 1,\n  \"client_id\": {}\n}}\n",
            serde_json::to_string(odd).unwrap()
        )
    );
    assert!(!is_sealed(b"[\"devauth-sealed-tokens\"]"));
    assert!(!is_sealed(b"{\"format\":1}"));
}
