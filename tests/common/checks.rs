//! Assertions shared by the end-to-end tests: timing gaps, QR codes decoded from what was drawn
//! (a plain terminal screen, a greyscale picture), and the languages the display tests draw in.

#![allow(dead_code)]

use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Assertions on timing.
// ---------------------------------------------------------------------------------------------

/// Asserts consecutive instants are at least `min` apart (minus 50 ms for scheduling).
#[track_caller]
pub fn assert_gaps_at_least(what: &str, at: &[Instant], min: Duration) {
    let min = min.saturating_sub(Duration::from_millis(50));
    for (i, w) in at.windows(2).enumerate() {
        let gap = w[1].saturating_duration_since(w[0]);
        assert!(
            gap >= min,
            "{what}: gap {i} is {gap:?}, less than {min:?} (all gaps: {:?})",
            gaps(at)
        );
    }
}

/// The gaps between consecutive instants.
pub fn gaps(at: &[Instant]) -> Vec<Duration> {
    at.windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .collect()
}

/// Collapses all whitespace runs to one space (to find wrapped text on a screen).
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The languages of the display tests: English and each pack of `locales/packs/`.
pub fn languages() -> Vec<devauth::screen::language::Language> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/packs");
    let mut out = vec![devauth::screen::language::Language::english()];
    for tag in devauth::locale::source::available(&dir) {
        let pack = devauth::locale::source::read_file(&dir.join(format!("{tag}.pack"))).unwrap();
        out.push(devauth::screen::language::Language::from_pack(pack).unwrap());
    }
    assert_eq!(out.len(), 20);
    out
}

// ---------------------------------------------------------------------------------------------
// The QR code on a plain (non-tty) terminal screen.
// ---------------------------------------------------------------------------------------------

/// Every QR code found in a `w`×`h` greyscale picture (`luma(x, y)`, 0 dark .. 255 light),
/// decoded with rqrr, as a phone's reader would see the pixels.
pub fn decode_qrs(w: u32, h: u32, luma: impl Fn(u32, u32) -> u8) -> Vec<String> {
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
        luma(x as u32, y as u32)
    });
    img.detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, s)| s))
        .collect()
}

/// Decodes the first QR code in a plain-mode terminal screen (`pair` without `--json`, stdout
/// a pipe). Plain mode draws like `qrencode -t UTF8` for a light-on-dark terminal: a full
/// block is two light pixels, `▀`/`▄` light on top/bottom, a space two dark ones.
#[track_caller]
pub fn decode_screen_qr(screen: &str) -> String {
    let is_qr_row = |l: &str| {
        !l.trim().is_empty()
            && l.chars().any(|c| c == '█')
            && l.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' '))
    };
    let rows: Vec<&str> = screen
        .lines()
        .skip_while(|l| !is_qr_row(l))
        .take_while(|l| is_qr_row(l))
        .collect();
    assert!(rows.len() > 10, "no QR code on the screen:\n{screen}");
    const PX: usize = 4;
    const MARGIN: usize = 8;
    let cols = rows.iter().map(|r| r.chars().count()).max().unwrap_or(0);
    let (w, h) = (cols * PX + 2 * MARGIN, rows.len() * 2 * PX + 2 * MARGIN);
    let mut img = vec![0u8; w * h];
    for (ty, row) in rows.iter().enumerate() {
        for (x, c) in row.chars().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            for (half, light) in [(0, top), (1, bottom)] {
                for py in 0..PX {
                    for px in 0..PX {
                        let yy = MARGIN + (2 * ty + half) * PX + py;
                        let xx = MARGIN + x * PX + px;
                        img[yy * w + xx] = if light { 255 } else { 0 };
                    }
                }
            }
        }
    }
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img[y * w + x]);
    let grids = prepared.detect_grids();
    assert_eq!(
        grids.len(),
        1,
        "expected one QR code on the screen:\n{screen}"
    );
    grids[0]
        .decode()
        .unwrap_or_else(|e| panic!("the QR code does not decode ({e:?}):\n{screen}"))
        .1
}
