use super::text::{split_code, url_text, wrap_url};
use super::*;
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
    }
}

/// On the QR page of alternating (OLED) layouts.
fn qr_page() -> CodeScreen {
    CodeScreen {
        remaining: Duration::from_secs(760),
        ..sample(true)
    }
}

#[test]
fn the_oled_alternates_between_qr_and_url() {
    let size = Size::new(128, 64);
    let p = Profile {
        safe_percent: 0,
        mono: true,
    };
    let qr = layout(&View::WaitingForUser(qr_page()), size, &p);
    assert!(qr.qr().is_some());
    let url = layout(&View::WaitingForUser(sample(true)), size, &p);
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
            };
            let view = View::WaitingForUser(qr_page());
            let l = layout(&view, Size::new(w, h), &profile);
            let screen = Rectangle::new(Point::zero(), l.size);
            assert!(l.qr().is_some(), "{w}x{h}: no QR");
            assert!(!l.code.is_empty(), "{w}x{h}: no code");
            let ticker = l.ticker.clone().expect("ticker");
            for item in &l.items {
                let r = item.rect();
                assert!(
                    within(r, l.safe),
                    "{w}x{h} {pct}%: {item:?} outside {:?}",
                    l.safe
                );
                assert!(within(r, screen));
                assert!(
                    !overlaps(r, ticker.rect),
                    "{w}x{h}: {item:?} under the ticker"
                );
            }
            assert!(within(ticker.rect, l.safe), "{w}x{h}: ticker {ticker:?}");
            let joined: String = l.texts().map(|t| t.text.clone()).collect();
            if w != 128 {
                assert!(joined.contains("example.com/"), "{w}x{h}: {joined}");
            }
        }
    }
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
    assert!(tick(&View::Denied, &slot).is_none());
    let r = View::Retrying {
        reason: "x".into(),
        in_secs: 7,
        code: None,
    };
    assert_eq!(tick(&r, &slot).unwrap().text, "Retrying in 7 s");
}

#[test]
fn wrapping() {
    let f = FontId::Regular14;
    let max = f.width("hello world");
    assert_eq!(
        wrap("hello world again", f, 1, max, 5),
        vec!["hello world", "again"]
    );
    let cut = wrap("a b c d e f g h i j k", f, 1, f.width("a b c"), 2);
    assert_eq!(cut.len(), 2);
    assert!(cut[1].ends_with("..."));
    let long = wrap("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", f, 1, 50, 10);
    assert!(long.len() > 1 && long.iter().all(|l| f.width(l) <= 50));
    let url = wrap_url("example.com/device/very/long/path?x=1&y=2", f, 1, 100);
    assert!(url.iter().all(|l| f.width(l) <= 100), "{url:?}");
    assert_eq!(url.concat(), "example.com/device/very/long/path?x=1&y=2");
    assert_eq!(
        split_code("WDJB-MJHT", FontId::Code16, 1, 64),
        vec!["WDJB", "MJHT"]
    );
    assert_eq!(
        split_code("WDJB-MJHT", FontId::Code16, 1, 75),
        vec!["WDJB-", "MJHT"]
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
