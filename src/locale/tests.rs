//! Tests of the packs as committed: wrapping, the order of right-to-left lines with codes, URLs
//! and numbers in them, ink inside the line box, and hostile packs.

use std::path::Path;

use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::{BinaryColor, Rgb888};
use embedded_graphics::prelude::*;

use super::source::read_file;
use super::*;

fn pack(tag: &str) -> Pack {
    read_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("locales/packs/{tag}.pack")))
        .unwrap()
}

fn all_packs() -> Vec<Pack> {
    source::available(&Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/packs"))
        .iter()
        .map(|t| pack(t))
        .collect()
}

/// Every placeholder 60 px wide, left to right.
fn slots(_: &str) -> Option<SlotValue> {
    Some(SlotValue {
        width: 60,
        rtl: false,
    })
}

/// The pieces of a one-line layout, as the viewer reads them left to right: slot names, and
/// `#` for each run of the pack.
fn visual(p: &Pack, key: &str) -> Vec<String> {
    let tier = p.tier(20).unwrap();
    let lines = p.lines(key, &tier, 10_000, &slots).unwrap();
    assert_eq!(lines.len(), 1, "{key}");
    let mut v: Vec<String> = lines[0]
        .pieces
        .iter()
        .map(|piece| match piece {
            Piece::Run { .. } => "#".to_string(),
            Piece::Slot { name, .. } => name.clone(),
        })
        .collect();
    // Runs of two fonts side by side (Hebrew letters, a colon from Noto Sans) read as one.
    v.dedup_by(|a, b| a == "#" && b == "#");
    v
}

#[test]
fn codes_urls_and_numbers_keep_their_place_in_arabic_and_hebrew() {
    for tag in ["ar", "he"] {
        let p = pack(tag);
        assert!(p.rtl());
        // "Code: {code}": right to left, the label is on the right, the code on its left.
        assert_eq!(visual(&p, "terminal_code"), ["code", "#"], "{tag}");
        // "Go to {url} and enter {code}": read from the right, the URL comes before the code.
        let v = visual(&p, "code_steps_short");
        let url = v.iter().position(|s| s == "url").unwrap();
        let code = v.iter().position(|s| s == "code").unwrap();
        assert!(code < url, "{tag}: {v:?}");
        // "Trying again in {seconds} s · code expires in {minutes}": the seconds come first.
        let v = visual(&p, "retrying_in_code");
        let s = v.iter().position(|s| s == "seconds").unwrap();
        let m = v.iter().position(|s| s == "minutes").unwrap();
        assert!(m < s, "{tag}: {v:?}");
    }
    // The same sentences left to right: the label first.
    assert_eq!(visual(&pack("de"), "terminal_code"), ["#", "code"]);
}

#[test]
fn a_code_stays_left_to_right_even_if_the_caller_says_otherwise() {
    // Codes and numbers are LRI isolates: a slot's own direction is only honoured for names.
    let p = pack("ar");
    let tier = p.tier(20).unwrap();
    let rtl = |_: &str| {
        Some(SlotValue {
            width: 60,
            rtl: true,
        })
    };
    for key in ["terminal_code", "code_expires", "retrying_in"] {
        for line in p.lines(key, &tier, 10_000, &rtl).unwrap() {
            for piece in &line.pieces {
                if let Piece::Slot { rtl, name, .. } = piece {
                    assert!(!rtl, "{key}: {name}");
                }
            }
        }
    }
    // A name may run right to left: a Hebrew name in a Hebrew greeting.
    let he = pack("he");
    let line = &he
        .lines("paired_welcome", &tier_of(&he, 20), 10_000, &rtl)
        .unwrap()[0];
    assert!(
        line.pieces
            .iter()
            .any(|p| matches!(p, Piece::Slot { rtl: true, .. }))
    );
}

fn tier_of(p: &Pack, px: u16) -> Tier {
    p.tier(px).unwrap()
}

#[test]
fn a_right_to_left_name_in_a_left_to_right_sentence_keeps_the_sentence_order() {
    // German "Willkommen, {name}" with a Hebrew name: the name stays after the greeting.
    let p = pack("de");
    let rtl = |_: &str| {
        Some(SlotValue {
            width: 60,
            rtl: true,
        })
    };
    let line = &p
        .lines("paired_welcome", &tier_of(&p, 20), 10_000, &rtl)
        .unwrap()[0];
    assert!(matches!(
        line.pieces.last(),
        Some(Piece::Slot { rtl: true, .. })
    ));
}

#[test]
fn lines_fit_their_width_and_break_only_where_allowed() {
    for p in all_packs() {
        let tier = tier_of(&p, 20);
        for key in p.keys().map(String::from).collect::<Vec<_>>() {
            let one = p.lines(&key, &tier, 100_000, &slots).unwrap();
            assert_eq!(one.len(), 1);
            let full = one[0].width;
            for max in [120, 200, 320, 600] {
                let lines = p.lines(&key, &tier, max, &slots).unwrap();
                assert!(!lines.is_empty());
                for l in &lines {
                    // Only a word wider than the line may overflow, alone on its line.
                    assert!(
                        l.width <= max || l.pieces.len() <= 3,
                        "{} {key} {max}: {}",
                        p.tag(),
                        l.width
                    );
                }
                // Breaking never adds width: the lines hold what one line held, less spaces.
                let sum: u32 = lines.iter().map(|l| l.width).sum();
                assert!(sum <= full + 2 * lines.len() as u32, "{} {key}", p.tag());
            }
        }
    }
}

#[test]
fn the_url_and_the_code_can_stand_as_blocks() {
    let tier = |p: &Pack| tier_of(p, 20);
    let shape = |p: &Pack, key: &str| -> Vec<String> {
        p.parts(key, &["url", "code"], &tier(p), 300, &slots)
            .unwrap()
            .iter()
            .map(|part| match part {
                Part::Lines(_) => "text".to_string(),
                Part::Block(b) => b.clone(),
            })
            .collect()
    };
    // English order: words, the URL, words, the code.
    assert_eq!(
        shape(&pack("fr"), "code_steps"),
        ["text", "url", "text", "code"]
    );
    // German puts words after the code ("ein: {code}" keeps the code last here).
    assert_eq!(
        shape(&pack("de"), "code_steps"),
        ["text", "url", "text", "code"]
    );
    // Hindi and Japanese end with the code too; Turkish puts words after the URL.
    assert_eq!(
        shape(&pack("ja"), "code_steps"),
        ["text", "url", "text", "code"]
    );
    assert_eq!(
        shape(&pack("tr"), "code_steps_short"),
        ["url", "text", "code"]
    );
    // Right to left: the same reading order; each text part is right-aligned by the layout.
    assert_eq!(
        shape(&pack("ar"), "code_steps"),
        ["text", "url", "text", "code"]
    );
    // Placeholders that are not blocks stay inside their line.
    let p = pack("es");
    let parts = p
        .parts(
            "retrying_in_code",
            &["url", "code"],
            &tier(&p),
            1000,
            &slots,
        )
        .unwrap();
    assert_eq!(parts.len(), 1);
}

#[test]
fn thai_and_japanese_break_without_spaces() {
    for (tag, key) in [
        ("th", "warning"),
        ("ja", "warning"),
        ("zh-Hans", "warning"),
        ("ko", "warning"),
    ] {
        let p = pack(tag);
        let lines = p.lines(key, &tier_of(&p, 20), 200, &slots).unwrap();
        assert!(lines.len() >= 3, "{tag}: {} lines", lines.len());
        for l in &lines {
            assert!(l.width <= 200, "{tag}: {}", l.width);
        }
    }
}

#[test]
fn balanced_lines_leave_no_short_last_line() {
    let p = pack("es");
    let tier = tier_of(&p, 20);
    let greedy = p.lines("warning", &tier, 300, &slots).unwrap();
    let balanced = p.balanced_lines("warning", &tier, 300, &slots).unwrap();
    assert_eq!(greedy.len(), balanced.len());
    let spread = |ls: &[Line]| {
        let w: Vec<u32> = ls.iter().map(|l| l.width).collect();
        w.iter().max().unwrap() - w.iter().min().unwrap()
    };
    assert!(spread(&balanced) <= spread(&greedy));
    assert!(balanced.iter().all(|l| l.width <= 300));
}

/// A target that records where ink fell.
struct Ink {
    size: Size,
    lit: Vec<Point>,
}

impl OriginDimensions for Ink {
    fn size(&self) -> Size {
        self.size
    }
}

impl DrawTarget for Ink {
    type Color = Rgb888;
    type Error = core::convert::Infallible;
    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        self.lit.extend(pixels.into_iter().map(|Pixel(p, _)| p));
        Ok(())
    }
}

#[test]
fn ink_stays_inside_the_line_box() {
    let ink = super::Ink {
        fg: Rgb888::WHITE,
        bg: Rgb888::BLACK,
        bold: false,
    };
    for p in all_packs() {
        for tier in p.tiers() {
            for key in p.keys().map(String::from).collect::<Vec<_>>() {
                if !p.covers(&key, &tier) {
                    continue;
                }
                for line in p.lines(&key, &tier, 400, &slots).unwrap() {
                    let mut t = Ink {
                        size: Size::new(2000, 200),
                        lit: Vec::new(),
                    };
                    let origin = Point::new(100, 50);
                    p.draw_line(&tier, &line, origin, ink, &mut t).unwrap();
                    assert!(
                        !t.lit.is_empty()
                            || line.pieces.iter().all(|p| matches!(p, Piece::Slot { .. }))
                    );
                    // A glyph may reach a little beyond its advance (a swash, an overhang), never
                    // above or below the line box.
                    let slack = i32::from(tier.px) / 4 + 1;
                    for pt in &t.lit {
                        assert!(
                            pt.y >= origin.y && pt.y < origin.y + tier.line_height() as i32,
                            "{} {key} {}px: ink at y {}",
                            p.tag(),
                            tier.px,
                            pt.y - origin.y
                        );
                        assert!(
                            pt.x >= origin.x - slack && pt.x < origin.x + line.width as i32 + slack,
                            "{} {key} {}px: ink at x {} of {}",
                            p.tag(),
                            tier.px,
                            pt.x - origin.x,
                            line.width
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn mono_panels_get_lit_pixels_only() {
    struct Bits(Vec<BinaryColor>);
    impl OriginDimensions for Bits {
        fn size(&self) -> Size {
            Size::new(128, 64)
        }
    }
    impl DrawTarget for Bits {
        type Color = BinaryColor;
        type Error = core::convert::Infallible;
        fn draw_iter<I: IntoIterator<Item = Pixel<BinaryColor>>>(
            &mut self,
            pixels: I,
        ) -> Result<(), Self::Error> {
            self.0.extend(pixels.into_iter().map(|Pixel(_, c)| c));
            Ok(())
        }
    }
    let p = pack("ru");
    let tier = p.tiers().find(|t| t.mono).unwrap();
    let line = &p.lines("code_new", &tier, 128, &slots).unwrap()[0];
    let mut b = Bits(Vec::new());
    let ink = super::Ink {
        fg: BinaryColor::On,
        bg: BinaryColor::Off,
        bold: true,
    };
    p.draw_line(&tier, line, Point::zero(), ink, &mut b)
        .unwrap();
    assert!(b.0.len() > 20);
    assert!(b.0.iter().all(|c| *c == BinaryColor::On));
}

#[test]
fn titles_have_a_larger_size_and_one_bit_only_where_readable() {
    for p in all_packs() {
        let big = p.tiers().find(|t| t.partial).unwrap();
        assert_eq!(big.px, 58);
        assert!(p.covers("code_title", &big) && p.covers("paired_welcome", &big));
        assert!(!p.covers("warning", &big) && !p.covers("code_steps", &big));
        // Titles ask for 58 px on a 1080p TV; the body for 42.
        assert_eq!(
            p.tier_for("denied_title", 58, false).map(|t| t.px),
            Some(58)
        );
        assert_eq!(p.tier_for("denied_body", 58, false).map(|t| t.px), Some(42));
        assert_eq!(p.tier_for("denied_body", 20, false).map(|t| t.px), Some(20));
        // Smaller than the smallest: the smallest.
        assert_eq!(p.tier_for("denied_body", 8, false).map(|t| t.px), Some(15));
        // The 128x64 OLED: a 1-bit size, except where the script is unreadable at 11 px.
        let oled = p.tier_for("denied_body", 11, true);
        let fallback = ["ar", "hi", "zh-Hans", "zh-Hant", "ja"].contains(&p.tag());
        assert_eq!(oled.is_none(), fallback, "{}", p.tag());
        assert!(!p.covers("no_such_key", &big));
    }
}

#[test]
fn left_to_right_letters_are_what_unicode_calls_letters_and_digits_in_every_pack() {
    // plain_direction's test without core's Unicode tables, against them, on every character
    // a name drawn from a pack can have (its character map).
    let mut seen = 0;
    for p in all_packs() {
        for c in p.plain_chars() {
            if ('\u{0590}'..='\u{05ff}').contains(&c) {
                continue; // Hebrew: asked first
            }
            assert_eq!(
                super::draw::left_to_right(c),
                c.is_alphanumeric(),
                "{} U+{:04X} {c}",
                p.tag(),
                u32::from(c)
            );
            seen += 1;
        }
    }
    assert!(seen > 1000, "{seen}");
}

#[test]
fn names_in_the_packs_script_are_drawn_from_its_letters() {
    let he = pack("he");
    // Letters of the Hebrew sentences: a name made of them can be drawn, right to left.
    assert_eq!(he.plain_direction("דוד"), Some(true));
    assert!(he.plain_width(&tier_of(&he, 20), "דוד").unwrap() > 10);
    // Mixed directions need the bidi algorithm: left out.
    assert_eq!(he.plain_direction("דוד Smith"), None);
    // A letter no sentence of the pack has: left out.
    assert_eq!(pack("ja").plain_direction("鬱"), None);
    assert_eq!(pack("ja").plain_direction("コード"), Some(false));
    // Arabic letters need shaping: never drawn unshaped.
    assert_eq!(pack("ar").plain_direction("محمد"), None);
    // Drawn right to left: the first letter ends up rightmost.
    let tier = tier_of(&he, 20);
    let ink = super::Ink {
        fg: Rgb888::WHITE,
        bg: Rgb888::BLACK,
        bold: false,
    };
    let lit = |text: &str, at: Point| {
        let mut t = Ink {
            size: Size::new(400, 100),
            lit: Vec::new(),
        };
        he.draw_plain(&tier, text, at, ink, &mut t).unwrap();
        let mut v = t.lit;
        v.sort_by_key(|p| (p.x, p.y));
        v
    };
    // "דו" drawn right to left is ו at the pen, then ד after it.
    let vav = he.plain_width(&tier, "ו").unwrap() as i32;
    let mut expected = lit("ו", Point::zero());
    expected.extend(lit("ד", Point::new(vav, 0)));
    expected.sort_by_key(|p| (p.x, p.y));
    expected.dedup();
    let mut got = lit("דו", Point::zero());
    got.dedup();
    assert_eq!(got, expected);
}

#[test]
fn plain_numbers_come_from_the_pack() {
    for p in all_packs() {
        let tier = tier_of(&p, 28);
        let w = p.plain_width(&tier, "12:34").unwrap();
        assert!(w > 30 && w < 120, "{}: {w}", p.tag());
        assert_eq!(p.plain_width(&tier, "12:34\u{2603}"), None);
    }
}

/// Seeded byte flips of a real pack: each is refused or, if accepted, laid out and drawn
/// without a panic.
#[test]
fn damaged_packs_are_refused_or_harmless() {
    let good =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/packs/he.pack")).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut refused = 0;
    for round in 0..200 {
        let mut bytes = good.clone();
        let flips = 1 + round % 4;
        for _ in 0..flips {
            // Mostly the header and tables, where a flip matters.
            let limit = if round % 2 == 0 { 2048 } else { bytes.len() };
            let at = (next() as usize) % limit;
            bytes[at] = next() as u8;
        }
        if round % 7 == 0 {
            bytes.truncate((next() as usize) % bytes.len());
        }
        match Pack::parse(bytes.into()) {
            Err(_) => refused += 1,
            Ok(p) => exercise(&p),
        }
    }
    assert!(refused > 25, "only {refused} refused");
    for bad in [&b""[..], b"DVLP", &good[..31]] {
        assert!(Pack::parse(bad.to_vec().into()).is_err());
    }
    let mut v2 = good.clone();
    v2[4] = 2;
    assert_eq!(Pack::parse(v2.into()).unwrap_err(), PackError::Version(2));
}

/// Counts pixels and keeps none (the damaged packs may draw a lot).
struct Count(u64);

impl OriginDimensions for Count {
    fn size(&self) -> Size {
        Size::new(400, 400)
    }
}

impl DrawTarget for Count {
    type Color = Rgb888;
    type Error = core::convert::Infallible;
    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        self.0 += pixels.into_iter().count() as u64;
        Ok(())
    }
}

/// Everything a screen does with a pack.
pub(super) fn exercise(p: &Pack) {
    let ink = super::Ink {
        fg: Rgb888::WHITE,
        bg: Rgb888::BLACK,
        bold: false,
    };
    let keys: Vec<String> = p.keys().map(String::from).collect();
    let mut t = Count(0);
    // Drawing is what costs in a debug build: the two smallest sizes (1-bit and 4-bit) draw.
    for (n, tier) in p.tiers().enumerate() {
        for (i, key) in keys.iter().enumerate() {
            let _ = p.text(key);
            let lines = if i < 3 {
                p.balanced_lines(key, &tier, 300, &slots)
            } else {
                p.lines(key, &tier, 300, &slots)
            };
            for l in lines.iter().flatten().filter(|_| n < 2) {
                let _ = p.draw_line(&tier, l, Point::new(10, 10), ink, &mut t);
            }
        }
        let _ = p.plain_width(&tier, "0:59");
        let _ = p.draw_plain(&tier, "0:59", Point::zero(), ink, &mut t);
    }
}
