//! Unit tests of `net::wire`.

use super::*;

fn json(s: &str) -> Fields {
    Fields::parse(s.as_bytes(), Some("application/json")).unwrap()
}
fn any_url(_: &str) -> Result<(), String> {
    Ok(())
}
fn https_only(u: &str) -> Result<(), String> {
    if u.starts_with("https://") {
        Ok(())
    } else {
        Err("not https".into())
    }
}

const RFC_EXAMPLE: &str = r#"{
        "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://example.com/device",
        "verification_uri_complete": "https://example.com/device?user_code=WDJB-MJHT",
        "expires_in": 1800,
        "interval": 5
    }"#;

#[test]
fn parses_the_rfc_8628_example() {
    let d = DeviceAuthorization::parse(&json(RFC_EXAMPLE), &any_url).unwrap();
    assert_eq!(d.user_code, "WDJB-MJHT");
    assert_eq!(d.verification_uri, "https://example.com/device");
    assert_eq!(
        d.qr_payload(),
        "https://example.com/device?user_code=WDJB-MJHT"
    );
    assert_eq!(d.expires_in, 1800);
    assert_eq!(d.interval, Some(5));
    assert_eq!(
        d.device_code.expose(),
        "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS"
    );
}

#[test]
fn google_verification_url_and_missing_complete_uri() {
    let f = json(
        r#"{"device_code":"d","user_code":"ABC-DEF-GHI","verification_url":"https://www.google.com/device","expires_in":1800,"interval":5}"#,
    );
    let d = DeviceAuthorization::parse(&f, &any_url).unwrap();
    assert_eq!(d.verification_uri, "https://www.google.com/device");
    assert_eq!(d.verification_uri_complete, None);
    assert_eq!(d.qr_payload(), "https://www.google.com/device");
}

#[test]
fn numbers_as_strings_and_null_or_absent_interval() {
    let f = json(
        r#"{"device_code":"d","user_code":"U","verification_uri":"https://x/d","expires_in":"900","interval":null}"#,
    );
    let d = DeviceAuthorization::parse(&f, &any_url).unwrap();
    assert_eq!((d.expires_in, d.interval), (900, None));
    let f = json(
        r#"{"device_code":"d","user_code":"U","verification_uri":"https://x/d","expires_in":900}"#,
    );
    assert_eq!(
        DeviceAuthorization::parse(&f, &any_url).unwrap().interval,
        None
    );
    let f = json(
        r#"{"device_code":"d","user_code":"U","verification_uri":"https://x/d","expires_in":900,"interval":"7"}"#,
    );
    assert_eq!(
        DeviceAuthorization::parse(&f, &any_url).unwrap().interval,
        Some(7)
    );
}

#[test]
fn microsoft_message_is_kept_and_cleaned() {
    let f = json(
        r#"{"device_code":"d","user_code":"U","verification_uri":"https://x/d","expires_in":900,"message":"To sign in, use a web browser\u001b[31m to open"}"#,
    );
    let d = DeviceAuthorization::parse(&f, &any_url).unwrap();
    let m = d.message.unwrap();
    assert!(m.starts_with("To sign in"));
    assert!(!m.contains('\u{1b}'));
}

#[test]
fn hostile_device_authorization_fields_are_refused() {
    let base = |code: &str| {
        format!(
            r#"{{"device_code":"d","user_code":{code},"verification_uri":"https://x/d","expires_in":900}}"#
        )
    };
    for bad in [
        r#""AB\u001bCD""#.to_string(),
        format!("\"{}\"", "A".repeat(MAX_USER_CODE_LEN + 1)),
        r#"" ABCD""#.to_string(),
        "42".to_string(),
    ] {
        let err = DeviceAuthorization::parse(&json(&base(&bad)), &any_url).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::Invalid {
                    field: "user_code",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
    let missing = json(r#"{"user_code":"U","verification_uri":"https://x/d","expires_in":9}"#);
    assert_eq!(
        DeviceAuthorization::parse(&missing, &any_url).unwrap_err(),
        WireError::Missing {
            field: "device_code"
        }
    );
    let negative = json(
        r#"{"device_code":"d","user_code":"U","verification_uri":"https://x/d","expires_in":-5}"#,
    );
    assert!(DeviceAuthorization::parse(&negative, &any_url).is_err());
}

#[test]
fn url_check_applies_to_both_uris() {
    let f = json(
        r#"{"device_code":"d","user_code":"U","verification_uri":"http://evil/d","expires_in":9}"#,
    );
    let err = DeviceAuthorization::parse(&f, &https_only).unwrap_err();
    assert!(matches!(
        err,
        WireError::Invalid {
            field: "verification_uri",
            ..
        }
    ));
    let f = json(
        r#"{"device_code":"d","user_code":"U","verification_uri":"https://ok/d","verification_uri_complete":"javascript:alert(1)","expires_in":9}"#,
    );
    let d = DeviceAuthorization::parse(&f, &https_only).unwrap();
    assert_eq!(
        d.verification_uri_complete, None,
        "bad complete URI dropped"
    );
}

#[test]
fn token_response_json_and_form() {
    let t = TokenResponse::parse(&json(
            r#"{"access_token":"at","token_type":"bearer","expires_in":"3600","refresh_token":"rt","scope":"a b"}"#,
        ))
        .unwrap();
    assert_eq!(t.access_token.expose(), "at");
    assert_eq!(t.expires_in, Some(3600));
    assert_eq!(t.scopes(), vec!["a", "b"]);
    // GitHub without Accept: application/json.
    let f = Fields::parse(
            b"access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
        )
        .unwrap();
    let t = TokenResponse::parse(&f).unwrap();
    assert_eq!(t.scopes(), vec!["repo", "gist"]);
    assert_eq!((t.expires_in, t.refresh_token), (None, None));
}

#[test]
fn token_type_other_than_bearer_is_refused() {
    let err =
        TokenResponse::parse(&json(r#"{"access_token":"at","token_type":"mac"}"#)).unwrap_err();
    assert!(matches!(
        err,
        WireError::Invalid {
            field: "token_type",
            ..
        }
    ));
}

#[test]
fn errors_never_quote_a_token() {
    let secret = "SUPERSECRETTOKEN";
    let bad = format!(r#"{{"access_token":"{secret}\u0001"}}"#);
    let err = TokenResponse::parse(&json(&bad)).unwrap_err().to_string();
    assert!(!err.contains(secret), "{err}");
    let truncated = format!(r#"{{"access_token":"{secret}"#);
    let err = Fields::parse(truncated.as_bytes(), Some("application/json"))
        .unwrap_err()
        .to_string();
    assert!(!err.contains(secret), "{err}");
    let wrong_type = format!(r#"{{"access_token":"x","expires_in":"{secret}"}}"#);
    // An unusable expires_in does not cost the tokens: it counts as "expires now".
    let t = TokenResponse::parse(&json(&wrong_type)).unwrap();
    assert_eq!(t.expires_in, Some(0));
}

#[test]
fn unusable_token_lifetimes_count_as_expiring_now() {
    for v in ["-1", "\"-3600\"", "1e300", "\"soon\"", "true", "[]"] {
        let t = TokenResponse::parse(&json(&format!(
            r#"{{"access_token":"at","token_type":"Bearer","expires_in":{v}}}"#
        )))
        .unwrap();
        assert_eq!(t.expires_in, Some(0), "{v}");
    }
}

#[test]
fn oauth_errors_parse_in_both_formats() {
    let e = OAuthError::parse(&json(
        r#"{"error":"slow_down","error_description":"Too fast","interval":10}"#,
    ))
    .unwrap();
    assert_eq!((e.error.as_str(), e.interval), ("slow_down", Some(10)));
    assert_eq!(e.to_string(), "slow_down (Too fast)");
    let f = Fields::parse(
        b"error=authorization_pending&error_description=pending",
        None,
    )
    .unwrap();
    assert_eq!(
        OAuthError::parse(&f).unwrap().error,
        "authorization_pending"
    );
    assert!(OAuthError::parse(&json(r#"{"access_token":"x"}"#)).is_none());
    let weird = OAuthError::parse(&json(r#"{"error":"a\u001bb c"}"#)).unwrap();
    assert_eq!(weird.error, "abc");
}

#[test]
fn html_and_garbage_bodies_are_named() {
    let e = Fields::parse(
        b"<html><body>502 Bad Gateway</body></html>",
        Some("text/html"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("HTML"), "{e}");
    let e = Fields::parse(b"", None).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let e = Fields::parse(b"[1,2]", Some("application/json")).unwrap_err();
    assert!(e.to_string().contains("array"), "{e}");
    assert!(Fields::parse(&[0xff, 0xfe, b'{'], None).is_err());
}

#[test]
fn duplicate_keys_are_refused_in_both_formats() {
    for (body, ct) in [
        (
            &br#"{"error":"authorization_pending","error":"access_denied"}"#[..],
            Some("application/json"),
        ),
        (
            br#"{"access_token":"a","x":{"y":1,"y":2},"access_token":"a"}"#,
            None,
        ),
        (b"error=slow_down&error=access_denied", None),
        (
            b"error=slow_down&%65rror=access_denied",
            Some("application/x-www-form-urlencoded"),
        ),
    ] {
        let e = Fields::parse(body, ct).unwrap_err().to_string();
        assert!(e.contains("appears twice") && e.contains("`"), "{e}");
    }
    let e = Fields::parse(
        br#"{"access_token":"s3cr3t","access_token":"s3cr3t"}"#,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`access_token` appears twice") && !e.contains("s3cr3t"),
        "{e}"
    );
    // Nested objects are values: their keys are not checked (nothing reads them as fields).
    assert!(Fields::parse(br#"{"a":{"k":1,"k":2},"b":[{"k":1},{"k":1}]}"#, None).is_ok());
}

#[test]
fn seconds_edge_cases() {
    let f = json(r#"{"a":1.9,"b":"12","c":"-3","d":-3,"e":"x","f":1e300,"g":true,"h":""}"#);
    assert_eq!(f.seconds("a"), Ok(Some(1)));
    assert_eq!(f.seconds("b"), Ok(Some(12)));
    assert!(f.seconds("c").is_err());
    assert!(f.seconds("d").is_err());
    assert!(f.seconds("e").is_err());
    assert!(f.seconds("f").is_err());
    assert!(f.seconds("g").is_err());
    assert_eq!(f.seconds("h"), Ok(None));
    assert_eq!(f.seconds("zz"), Ok(None));
}

#[test]
fn id_token_claims_give_the_account() {
    let claims = r#"{"sub":"123","email":"a@b.c"}"#;
    let b64 = base64_encode(claims.as_bytes())
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    let tok = Secret::new(format!("eyJhbGciOiJSUzI1NiJ9.{b64}.sig"));
    let f = id_token_claims(&tok).unwrap();
    assert_eq!(account_from_claims(&f).as_deref(), Some("a@b.c"));
    assert!(id_token_claims(&Secret::new("a.b")).is_err());
    assert!(id_token_claims(&Secret::new("a.!!!.c")).is_err());
    let only_sub = json(r#"{"sub":"u-1"}"#);
    assert_eq!(account_from_claims(&only_sub).as_deref(), Some("u-1"));
}

#[test]
fn base64_round_trips() {
    for s in [
        "",
        "f",
        "fo",
        "foo",
        "foob",
        "fooba",
        "foobar",
        "client:s3cr%t",
    ] {
        let enc = base64_encode(s.as_bytes());
        assert_eq!(base64url_decode(&enc).unwrap(), s.as_bytes());
    }
    assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64_encode(b"fo"), "Zm8=");
}

#[test]
fn form_encoding_round_trips() {
    let s = "a b&c=d/é+%";
    let enc = form_encode(s);
    assert_eq!(enc, "a+b%26c%3Dd%2F%C3%A9%2B%25");
    assert_eq!(percent_decode(&enc).unwrap(), s);
    assert_eq!(percent_decode("%zz"), None);
    assert_eq!(percent_decode("%4"), None);
}

#[test]
fn http_dates() {
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_http_date("Sat, 29 Feb 2020 12:00:00 GMT"),
        Some(1_582_977_600)
    );
    assert_eq!(parse_http_date("garbage"), None);
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
    assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
}

#[test]
fn discovery_document() {
    let d = Discovery::parse(&json(
            r#"{"issuer":"https://i","device_authorization_endpoint":"https://i/d","token_endpoint":"https://i/t","grant_types_supported":["x"]}"#,
        ))
        .unwrap();
    assert_eq!(
        d.device_authorization_endpoint.as_deref(),
        Some("https://i/d")
    );
    assert_eq!(d.revocation_endpoint, None);
}
