//! The framebuffer backend against a plain file with the geometry given in the config: the right
//! bytes for every pixel format and a padded stride, a QR decoded from those bytes, opaque alpha,
//! untouched row padding, and a countdown tick that rewrites only the countdown rows/columns.
#![cfg(feature = "fbdev")]

mod common;

use common::decode_qrs;
use devauth::cli::RenderState;
use devauth::commands::render::sample_view;
use devauth::config::{DisplayBackend, DisplayConfig};
use devauth::screen::canvas::PixelFormat;
use devauth::screen::fbdev::FbScreen;
use devauth::screen::{Screen, View};
use embedded_graphics::prelude::*;
use std::time::Duration;

const FILL: u8 = 0xA5;

fn config(path: &std::path::Path, w: u32, h: u32, f: PixelFormat, stride: u32) -> DisplayConfig {
    DisplayConfig {
        backend: DisplayBackend::Framebuffer,
        device: path.to_path_buf(),
        width: Some(w),
        height: Some(h),
        format: Some(f),
        stride: Some(stride),
        ..DisplayConfig::default()
    }
}

fn pixel(bytes: &[u8], f: PixelFormat, stride: usize, x: u32, y: u32) -> Rgb888 {
    let bpp = usize::from(f.bytes);
    let at = y as usize * stride + x as usize * bpp;
    let mut word = [0u8; 4];
    word[..bpp].copy_from_slice(&bytes[at..at + bpp]);
    f.decode(u32::from_le_bytes(word))
}

fn decode(bytes: &[u8], f: PixelFormat, stride: usize, w: u32, h: u32) -> Vec<String> {
    decode_qrs(w, h, |x, y| {
        let c = pixel(bytes, f, stride, x, y);
        ((u32::from(c.r()) + u32::from(c.g()) + u32::from(c.b())) / 3) as u8
    })
}

use embedded_graphics::pixelcolor::{Rgb888, RgbColor};

#[test]
fn every_format_with_padding_decodes_from_the_file_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (320u32, 240u32);
    let view = sample_view(RenderState::Code);
    let View::WaitingForUser(code) = &view else {
        unreachable!()
    };
    for (name, f) in PixelFormat::NAMED {
        let row = w as usize * usize::from(f.bytes);
        let stride = row + 24; // padding at the end of every row
        let path = dir.path().join(format!("fb-{name}"));
        std::fs::write(&path, vec![FILL; stride * h as usize]).unwrap();
        let mut fb = FbScreen::open(&config(&path, w, h, f, stride as u32)).unwrap();
        fb.show(&view).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), stride * h as usize, "{name}: file size kept");
        for y in 0..h as usize {
            let pad = &bytes[y * stride + row..(y + 1) * stride];
            assert!(
                pad.iter().all(|b| *b == FILL),
                "{name}: padding of row {y} written"
            );
        }
        // The canvas and the file agree, and the background is the theme's.
        let bg = devauth::screen::draw::rgb(
            devauth::screen::layout::Role::Background,
            devauth::screen::layout::Theme::Dark,
        );
        let px = pixel(&bytes, f, stride, 0, 0);
        let tol = |a: u8, b: u8| (i16::from(a) - i16::from(b)).abs() <= 8;
        assert!(
            tol(px.r(), bg.r()) && tol(px.g(), bg.g()) && tol(px.b(), bg.b()),
            "{name}: {px:?}"
        );
        if let Some(a) = f.alpha {
            let byte = usize::from(a.offset / 8);
            assert_eq!(bytes[byte], 0xff, "{name}: alpha must be opaque");
        }
        assert_eq!(
            decode(&bytes, f, stride, w, h),
            vec![code.qr_payload.clone()],
            "{name}"
        );
    }
}

#[test]
fn a_1080p_xrgb8888_framebuffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fb0");
    std::fs::write(&path, b"").unwrap();
    let f = PixelFormat::XRGB8888;
    let mut d = config(&path, 1920, 1080, f, 1920 * 4);
    d.title_safe_percent = 5;
    let mut fb = FbScreen::open(&d).unwrap();
    let view = sample_view(RenderState::Code);
    fb.show(&view).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes.len(),
        1920 * 1080 * 4,
        "the file grew to hold the screen"
    );
    let View::WaitingForUser(code) = &view else {
        unreachable!()
    };
    assert_eq!(
        decode(&bytes, f, 1920 * 4, 1920, 1080),
        vec![code.qr_payload.clone()]
    );
}

#[test]
fn a_countdown_tick_does_not_rewrite_the_qr() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fb");
    let (w, h) = (1280u32, 720u32);
    let f = PixelFormat::RGB565;
    let stride = w as usize * 2;
    std::fs::write(&path, vec![0u8; stride * h as usize]).unwrap();
    let mut fb = FbScreen::open(&config(&path, w, h, f, stride as u32)).unwrap();
    let mut view = sample_view(RenderState::Code);
    fb.show(&view).unwrap();
    let layout = fb.layout().unwrap().clone();
    let (origin, qr) = layout.qr().unwrap();
    let ticker = layout.ticker.clone().unwrap().rect;
    // Scribble over the QR in the "device memory": a redraw of the QR would undo it.
    let mut bytes = std::fs::read(&path).unwrap();
    let side = qr.side() as usize;
    for y in origin.y as usize..origin.y as usize + side {
        let at = y * stride + origin.x as usize * 2;
        bytes[at..at + side * 2].fill(0x55);
    }
    // Overwrite in place (no truncation: the backend has the file mapped).
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(&bytes).unwrap();
    }
    if let View::WaitingForUser(c) = &mut view {
        c.remaining -= Duration::from_secs(1);
    }
    fb.show(&view).unwrap();
    let after = std::fs::read(&path).unwrap();
    for y in 0..h as usize {
        for x in 0..w as usize {
            let at = y * stride + x * 2;
            let in_ticker = ticker.contains(Point::new(x as i32, y as i32));
            if !in_ticker {
                assert_eq!(
                    after[at..at + 2],
                    bytes[at..at + 2],
                    "({x},{y}) outside the ticker changed"
                );
            }
        }
    }
    assert_ne!(after, bytes, "the tick changed the countdown");
}

/// `devauth run` hands the display back after the "paired" screen: blanking clears every pixel
/// to zero (black, and transparent where the format has alpha: an OSD layer then shows the
/// video below), leaves the row padding alone, and the next view is drawn in full again.
#[test]
fn release_blank_clears_to_transparent_black_and_the_next_view_redraws() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (320u32, 240u32);
    let f = PixelFormat::NAMED
        .iter()
        .find(|(name, _)| *name == "argb8888")
        .map(|(_, f)| *f)
        .expect("argb8888 is a named format");
    let row = w as usize * 4;
    let stride = row + 16;
    let path = dir.path().join("fb");
    std::fs::write(&path, vec![FILL; stride * h as usize]).unwrap();
    let mut fb = FbScreen::open(&config(&path, w, h, f, stride as u32)).unwrap();
    let view = sample_view(RenderState::Paired);
    fb.show(&view).unwrap();
    fb.release(false).unwrap();
    let kept = std::fs::read(&path).unwrap();
    assert!(
        kept.iter().any(|b| *b != 0 && *b != FILL),
        "release(false) keeps the picture"
    );
    fb.release(true).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for y in 0..h as usize {
        assert!(
            bytes[y * stride..y * stride + row].iter().all(|b| *b == 0),
            "row {y} cleared"
        );
        assert!(
            bytes[y * stride + row..(y + 1) * stride]
                .iter()
                .all(|b| *b == FILL),
            "padding kept"
        );
    }
    fb.show(&view).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        kept,
        "the same view is drawn in full again"
    );
}
