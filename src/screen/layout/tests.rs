use super::text::{split_code, url_text, wrap, wrap_url};
use super::*;
use crate::screen::CodeScreen;
use crate::screen::Problem;
use crate::screen::language::Language;
use std::time::Duration;

pub(crate) fn sample(complete: bool) -> CodeScreen {
    CodeScreen {
        verification_uri: "https://example.com/device".into(),
        qr_payload: if complete {
            "https://example.com/device?user_code=WDJB-MJHT".into()
        } else {
            "https://example.com/device".into()
        },
        user_code: "WDJB-MJHT".into(),
        message: None,
        remaining: Duration::from_secs(754),
        lifetime: Duration::from_secs(900),
        renewed: false,
        profile: None,
    }
}

/// On the QR page of alternating (OLED) layouts.
fn qr_page() -> CodeScreen {
    CodeScreen {
        remaining: Duration::from_secs(760),
        ..sample(true)
    }
}

fn mono() -> Profile {
    Profile {
        mono: true,
        ..Profile::default()
    }
}

#[test]
fn the_oled_alternates_between_qr_and_url() {
    let size = Size::new(128, 64);
    let qr = layout(&View::WaitingForUser(qr_page()), size, &mono());
    assert!(qr.qr().is_some());
    let url = layout(&View::WaitingForUser(sample(true)), size, &mono());
    assert!(url.qr().is_none());
    assert!(url.texts().any(|t| t.text.contains("example.com")));
    assert!(!url.code.is_empty() && !qr.code.is_empty());
}

fn within(inner: Rectangle, outer: Rectangle) -> bool {
    let (a, b) = (inner.top_left, inner.top_left + inner.size);
    let (c, d) = (outer.top_left, outer.top_left + outer.size);
    a.x >= c.x && a.y >= c.y && b.x <= d.x && b.y <= d.y
}

fn overlaps(a: Rectangle, b: Rectangle) -> bool {
    !a.intersection(&b).is_zero_sized()
}

const SIZES: [(u32, u32); 12] = [
    (128, 64),
    (240, 240),
    (320, 240),
    (240, 320),
    (480, 320),
    (320, 480),
    (1280, 720),
    (720, 1280),
    (1920, 1080),
    (1080, 1920),
    (3840, 2160),
    (2160, 3840),
];

#[test]
fn code_screens_keep_url_code_qr_and_ticker_inside_the_safe_area() {
    for (w, h) in SIZES {
        for pct in [0, 5] {
            let profile = Profile {
                safe_percent: pct,
                mono: w == 128,
                ..Profile::default()
            };
            let view = View::WaitingForUser(qr_page());
            let l = layout(&view, Size::new(w, h), &profile);
            assert!(l.qr().is_some(), "{w}x{h}: no QR");
            assert!(!l.code.is_empty(), "{w}x{h}: no code");
            let problems = check(&l, "WDJB-MJHT");
            assert!(problems.is_empty(), "{w}x{h} {pct}%: {problems:?}");
            let joined: String = l.texts().map(|t| t.text.clone()).collect();
            if w != 128 {
                assert!(joined.contains("example.com/"), "{w}x{h}: {joined}");
            }
        }
    }
}

/// What is wrong with a layout, per the rules every screen keeps: every box inside the
/// margins (the title-safe area), no two boxes overlapping (text lines, QR, the countdown slot),
/// no ellipsis in the code or the URL, and the code drawn exactly as sent (its lines joined,
/// with a space where a space was broken, are the code).
pub(crate) fn check(l: &Layout, code: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut boxes: Vec<(Rectangle, String)> = l
        .items
        .iter()
        .map(|i| (i.rect(), format!("{i:?}")))
        .collect();
    if let Some(t) = &l.ticker {
        boxes.push((t.rect, "the countdown".to_string()));
    }
    for (i, (r, what)) in boxes.iter().enumerate() {
        if !within(*r, l.safe) {
            problems.push(format!("outside the margins {:?}: {what}", l.safe));
        }
        for (r2, what2) in boxes.iter().skip(i + 1) {
            if overlaps(*r, *r2) {
                problems.push(format!("overlap: {what} and {what2}"));
            }
        }
    }
    // Every glyph is there: a character a face lacks would measure nothing and draw nothing.
    for t in l.texts() {
        if !t.font.covers(&t.text) {
            problems.push(format!("{:?} lacks a letter of {:?}", t.font, t.text));
        }
    }
    for item in &l.items {
        let Item::Shaped { shaped, .. } = item else {
            continue;
        };
        let Some(pack) = l.language.pack() else {
            problems.push("a line of a pack in a language without one".to_string());
            continue;
        };
        for v in &shaped.values {
            let drawn = match v.font {
                Some(f) => f.covers(&v.text),
                None => pack.plain_width(&shaped.tier, &v.text).is_some(),
            };
            if !drawn {
                problems.push(format!("no glyph for a letter of {:?}", v.text));
            }
        }
        for piece in &shaped.line.pieces {
            if let crate::locale::Piece::Slot { name, .. } = piece {
                if !shaped.values.iter().any(|v| &v.slot == name) {
                    problems.push(format!("no value for {{{name}}}"));
                }
            }
        }
    }
    for t in l.texts() {
        if matches!(t.role, Role::Code | Role::Link)
            && (t.text.contains("...") || t.text.contains('…'))
        {
            problems.push(format!("an ellipsis in {:?}", t.text));
        }
    }
    let code_lines: Vec<&str> = l
        .texts()
        .filter(|t| t.role == Role::Code)
        .map(|t| t.text.as_str())
        .collect();
    if !code.is_empty() && !code_lines.is_empty() {
        let joined = code_lines.concat();
        let spaced = code_lines.join(" ");
        if joined != code && spaced != code {
            problems.push(format!(
                "the code drawn as {code_lines:?}, sent as {code:?}"
            ));
        }
    }
    problems
}

/// Every state a screen shows, with the sample data `devauth render` uses (and harder cases:
/// a long name, a Microsoft-style message, a device name, a profile, a numeric code).
fn states() -> Vec<(&'static str, View)> {
    let retrying = |code| View::Retrying {
        reason: "could not reach example.com".into(),
        in_secs: 12,
        code,
    };
    vec![
        ("code", View::WaitingForUser(qr_page())),
        ("code-url-page", View::WaitingForUser(sample(true))),
        (
            "renewed",
            View::WaitingForUser(CodeScreen {
                renewed: true,
                remaining: Duration::from_secs(900),
                ..sample(true)
            }),
        ),
        (
            "numeric",
            View::WaitingForUser(CodeScreen {
                user_code: "019-450-730".into(),
                qr_payload: "https://example.com/device?user_code=019-450-730".into(),
                ..qr_page()
            }),
        ),
        (
            "message",
            View::WaitingForUser(CodeScreen {
                message: Some("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code WDJB-MJHT to authenticate.".into()),
                profile: Some("Anna".into()),
                ..qr_page()
            }),
        ),
        (
            "browser-sign-in",
            View::WaitingForUser(CodeScreen {
                verification_uri: "https://accounts.example.com/authorize?response_type=code&client_id=abc&state=xyz".into(),
                qr_payload: "https://accounts.example.com/authorize?response_type=code&client_id=abc&state=xyz".into(),
                user_code: String::new(),
                ..qr_page()
            }),
        ),
        ("retrying", retrying(Some(qr_page()))),
        ("retrying-no-code", retrying(None)),
        ("clock", View::WaitingForClock),
        (
            "paired",
            View::Paired {
                account: Some("josé.müller@example.de".into()),
                name: Some("José Müller".into()),
            },
        ),
        (
            "paired-long",
            View::Paired {
                account: Some("a.very.long.address.that.never.ends@subdomain.example.com".into()),
                name: Some("Maria Magdalena Catalina Fernández de la Cruz y Obregón".into()),
            },
        ),
        ("paired-none", View::Paired { account: None, name: None }),
        ("denied", View::Denied),
        ("stopped", View::Stopped { code_shown: true }),
        ("stopped-early", View::Stopped { code_shown: false }),
        ("error", View::Error { problem: Problem::Service }),
    ]
}

fn code_of(view: &View) -> &str {
    match view {
        View::WaitingForUser(c) | View::Retrying { code: Some(c), .. } => &c.user_code,
        _ => "",
    }
}

/// The languages the sweep lays out: English and every pack in `locales/packs/` (data, not
/// code: a new language is swept as soon as its pack is there). Each pack's sentences are its
/// catalogue's (`locales/<tag>.toml`, checked by the generator's currency check).
pub(crate) fn languages() -> Vec<Language> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/packs");
    let mut out = vec![Language::english()];
    for tag in crate::locale::source::available(&dir) {
        let pack = crate::locale::source::read_file(&dir.join(format!("{tag}.pack"))).unwrap();
        out.push(Language::from_pack(pack).unwrap());
    }
    assert_eq!(out.len(), 20, "en and the 19 packs");
    out
}

/// The sweep: every language × size × state × text scale × device name keeps the rules of
/// [`check`], and nothing is left out but what no face can draw.
#[test]
fn every_state_at_every_size_keeps_the_rules() {
    for language in languages() {
        let lang = language.tag().to_string();
        for (w, h) in SIZES {
            for (name, view) in states() {
                for (percent, device) in [
                    (100, None),
                    (150, Some("Wohnzimmer-Fernseher")),
                    (200, None),
                ] {
                    let profile = Profile {
                        safe_percent: 5,
                        mono: w == 128,
                        text_percent: percent,
                        device_name: device.map(String::from),
                        language: language.clone(),
                        ..Profile::default()
                    };
                    let l = layout(&view, Size::new(w, h), &profile);
                    let problems = check(&l, code_of(&view));
                    assert!(
                        problems.is_empty(),
                        "{lang} {w}x{h} {name} at {percent}%: {problems:?}"
                    );
                    assert!(l.omitted.is_empty(), "{w}x{h} {name}: {:?}", l.omitted);
                    if !code_of(&view).is_empty() {
                        assert!(!l.code.is_empty(), "{w}x{h} {name}: no code");
                        assert!(
                            l.ticker.is_some() || w == 128,
                            "{w}x{h} {name}: no countdown"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn states_have_their_own_words() {
    let size = Size::new(480, 320);
    let texts = |v: &View| -> String {
        layout(v, size, &Profile::default())
            .texts()
            .map(|t| t.text.clone())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let stopped = texts(&View::Stopped { code_shown: true });
    assert!(
        stopped.contains("Pairing stopped") && stopped.contains("no longer works"),
        "{stopped}"
    );
    let early = texts(&View::Stopped { code_shown: false });
    assert!(!early.contains("code"), "no code was shown: {early}");
    assert!(
        texts(&View::Error {
            problem: Problem::Network
        })
        .contains("could not be reached")
    );
    let paired = texts(&View::Paired {
        account: Some("ada@example.com".into()),
        name: Some("Ada".into()),
    });
    assert!(
        paired.contains("Welcome, Ada") && paired.contains("ada@example.com"),
        "{paired}"
    );
    assert!(!paired.contains("devauth unpair"), "{paired}");
    let retry = texts(&View::Retrying {
        reason: "https://example.com/token: timed out".into(),
        in_secs: 3,
        code: None,
    });
    assert!(
        !retry.contains("timed out") && !retry.contains("https://"),
        "details go to the log: {retry}"
    );
}

#[test]
fn names_are_drawn_as_written_or_left_out() {
    let size = Size::new(1920, 1080);
    for name in ["José Müller", "Ελένη", "Дмитрий", "Łukasz Ćwik"] {
        let l = layout(
            &View::Paired {
                account: Some("josé.müller@example.de".into()),
                name: Some(name.into()),
            },
            size,
            &Profile::default(),
        );
        let joined: Vec<_> = l.texts().map(|t| t.text.clone()).collect();
        assert!(joined.contains(&format!("Welcome, {name}")), "{joined:?}");
        assert!(
            joined.iter().any(|t| t.contains("josé.müller@example.de")),
            "{joined:?}"
        );
        assert!(l.omitted.is_empty());
    }
    // A script without glyphs: the greeting falls back to "Paired", never '?'.
    let l = layout(
        &View::Paired {
            account: Some("li@example.cn".into()),
            name: Some("李雷".into()),
        },
        size,
        &Profile::default(),
    );
    let joined: Vec<_> = l.texts().map(|t| t.text.clone()).collect();
    assert!(joined.contains(&"Paired".to_string()), "{joined:?}");
    assert!(
        joined.iter().all(|t| !t.contains('?') && !t.contains('李')),
        "{joined:?}"
    );
    assert_eq!(l.omitted, vec!["name \"李雷\"".to_string()]);
    // Bidi overrides and zero-width characters from the server are stripped.
    let l = layout(
        &View::Paired {
            account: None,
            name: Some("Ev\u{202e}il\u{200b}".into()),
        },
        size,
        &Profile::default(),
    );
    assert!(l.texts().any(|t| t.text == "Welcome, Evil"));
}

#[test]
fn the_warning_names_the_device_and_is_left_out_where_there_is_no_room() {
    let with_name = Profile {
        device_name: Some("Living room TV".into()),
        ..Profile::default()
    };
    let tv = layout(
        &View::WaitingForUser(qr_page()),
        Size::new(1920, 1080),
        &with_name,
    );
    let text: String = tv
        .texts()
        .map(|t| t.text.clone())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("setting up Living room TV yourself"),
        "{text}"
    );
    assert!(
        text.contains("Never enter a code someone sent you."),
        "{text}"
    );
    let generic = layout(
        &View::WaitingForUser(qr_page()),
        Size::new(1920, 1080),
        &Profile::default(),
    );
    let text: String = generic
        .texts()
        .map(|t| t.text.clone())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("setting up this device yourself"), "{text}");
    let oled = layout(
        &View::WaitingForUser(qr_page()),
        Size::new(128, 64),
        &mono(),
    );
    assert!(oled.texts().all(|t| !t.text.contains("Never")));
}

#[test]
fn text_scale_grows_the_words_not_past_the_screen() {
    let size = Size::new(1280, 720);
    let at = |percent| {
        let p = Profile {
            text_percent: percent,
            ..Profile::default()
        };
        let l = layout(&View::Denied, size, &p);
        l.texts().map(|t| t.font.height() * t.scale).max().unwrap()
    };
    assert!(at(200) > at(100), "{} vs {}", at(200), at(100));
}

#[test]
fn the_code_is_as_large_at_320x240_as_at_240x240() {
    let code_h = |w, h| {
        let l = layout(
            &View::WaitingForUser(qr_page()),
            Size::new(w, h),
            &Profile::default(),
        );
        l.code.iter().map(|r| r.size.height).max().unwrap()
    };
    assert!(code_h(320, 240) >= code_h(240, 240));
}

#[test]
fn no_paragraph_ends_in_a_lone_word() {
    let f = Face::new(FontId::Regular14, 1);
    let lines = wrap(
        "On your phone or computer, go to",
        f,
        f.width("On your phone or computer,") + 2,
    );
    assert_eq!(lines.len(), 2);
    let (first, last) = (f.width(&lines[0]), f.width(&lines[1]));
    assert!(last * 3 >= first, "{lines:?}");
}

#[test]
fn qr_uses_integer_scale_and_a_quiet_zone_of_four_except_on_the_oled() {
    for (w, h) in SIZES {
        let l = layout(
            &View::WaitingForUser(qr_page()),
            Size::new(w, h),
            &Profile::default(),
        );
        let (_, code) = l.qr().unwrap();
        if w == 128 {
            assert_eq!(code.quiet, 3);
            assert_eq!(code.payload, "https://example.com/device");
        } else {
            assert_eq!(code.quiet, 4, "{w}x{h}");
            assert_eq!(
                code.payload,
                "https://example.com/device?user_code=WDJB-MJHT"
            );
        }
        assert!(code.scale >= 2);
    }
}

#[test]
fn layout_does_not_depend_on_time_left() {
    for (w, h) in SIZES {
        let size = Size::new(w, h);
        let p = Profile::default();
        let mut a = sample(true);
        let mut b = sample(true);
        a.remaining = Duration::from_secs(899);
        b.remaining = Duration::from_secs(898);
        let (va, vb) = (View::WaitingForUser(a), View::WaitingForUser(b));
        assert_eq!(static_key(&va, size, &p), static_key(&vb, size, &p));
        assert_eq!(layout(&va, size, &p), layout(&vb, size, &p));
    }
}

#[test]
fn tick_texts() {
    let slot = Ticker {
        language: Language::english(),
        mono: false,
        rtl: false,
        rect: Rectangle::new(Point::zero(), Size::new(1000, 40)),
        text_y: 0,
        font: FontId::Regular20,
        scale: 1,
        align: Align::Left,
        bar: None,
    };
    let t = tick(&View::WaitingForUser(sample(true)), &slot).unwrap();
    assert_eq!(t.text, "Code expires in 12:34");
    assert_eq!(t.permille, 837);
    assert_eq!(clock_text(3723), "1:02:03");
    let narrow = Ticker {
        rect: Rectangle::new(Point::zero(), Size::new(60, 40)),
        ..slot.clone()
    };
    assert_eq!(
        tick(&View::WaitingForUser(sample(true)), &narrow)
            .unwrap()
            .text,
        "12:34"
    );
    let fresh = CodeScreen {
        renewed: true,
        remaining: Duration::from_secs(895),
        ..sample(true)
    };
    let renewed = View::WaitingForUser(fresh.clone());
    assert_eq!(
        tick(&renewed, &slot).unwrap().text,
        "New code - expires in 14:55"
    );
    let medium = Ticker {
        rect: Rectangle::new(
            Point::zero(),
            Size::new(FontId::Regular20.width("New code") + 4, 40),
        ),
        ..slot.clone()
    };
    assert_eq!(tick(&renewed, &medium).unwrap().text, "New code");
    let later = View::WaitingForUser(CodeScreen {
        remaining: Duration::from_secs(800),
        ..fresh
    });
    assert_eq!(tick(&later, &medium).unwrap().text, "13:20");
    assert!(tick(&View::Denied, &slot).is_none());
    let r = View::Retrying {
        reason: "x".into(),
        in_secs: 7,
        code: None,
    };
    assert_eq!(tick(&r, &slot).unwrap().text, "Trying again in 7 s");
}

#[test]
fn wrapping() {
    let f = Face::new(FontId::Regular14, 1);
    let max = f.width("hello world");
    assert_eq!(wrap("hello world again", f, max).len(), 2);
    let long = wrap("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", f, 50);
    assert!(long.len() > 1 && long.iter().all(|l| f.width(l) <= 50));
    let url = wrap_url("example.com/device/very/long/path?x=1&y=2", f, 100);
    assert!(url.iter().all(|l| f.width(l) <= 100), "{url:?}");
    assert_eq!(url.concat(), "example.com/device/very/long/path?x=1&y=2");
    let code = Face::new(FontId::Code16, 1);
    // The hyphen stays: the code is drawn exactly as sent.
    assert_eq!(
        split_code("WDJB-MJHT", code, code.width("WDJB-")),
        vec!["WDJB-", "MJHT"]
    );
    assert_eq!(
        split_code("1234 5678", code, code.width("1234 ")),
        vec!["1234", "5678"]
    );
    assert_eq!(
        url_text("https://example.com/device/"),
        "example.com/device"
    );
    assert_eq!(
        url_text("http://127.0.0.1:8080/d"),
        "http://127.0.0.1:8080/d"
    );
}

/// The English words are drawn by the ASCII faces themselves: every sentence of the catalogue
/// has a glyph in every face that draws devauth's own words.
#[test]
fn every_english_sentence_is_drawable_by_the_word_faces() {
    use crate::screen::catalog::{Catalog, Msg};
    let faces = [
        FontId::Tiny,
        FontId::Regular11,
        FontId::Regular14,
        FontId::Regular20,
        FontId::Regular30,
        FontId::Bold11,
        FontId::Bold14,
        FontId::Bold20,
        FontId::Bold30,
        FontId::Bold42,
    ];
    for &m in Msg::ALL {
        let text = Catalog::english().raw(m);
        for f in faces {
            assert!(f.covers(text), "{f:?} cannot draw {:?}: {text}", m.key());
        }
    }
}
