//! Screen drawing speed: `cargo run --release --example bench_screen [-- TAG...]`.
//!
//! Each language named (a pack of `locales/packs/`, e.g. `ar hi ja`; `en`, the default, is the
//! compiled-in English) is measured in turn. Prints, for a 1920×1080 XRGB8888 framebuffer and a
//! 240×240 RGB565 panel:
//! - full draw: layout (QR encoding included) + drawing into the shadow canvas + copying the
//!   changed rows into the framebuffer (a file in /dev/shm, mapped like /dev/fb0);
//! - draw only: the same into the canvas, without the copy (what an SPI panel pays before its
//!   transfer);
//! - countdown tick: the countdown text and bar redrawn and copied.
//!
//! Single-threaded; median and best of N runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use devauth::config::{DisplayBackend, DisplayConfig};
use devauth::screen::canvas::{Canvas, PixelFormat, Rotation};
use devauth::screen::fbdev::FbScreen;
use devauth::screen::language::Language;
use devauth::screen::painter::Painter;
use devauth::screen::{CodeScreen, Screen, View};
use embedded_graphics::prelude::Size;

fn view(remaining: u64) -> View {
    code_view(remaining, "WDJB-MJHT")
}

/// A view with its own user code, so its QR has to be encoded afresh.
fn code_view(remaining: u64, code: &str) -> View {
    View::WaitingForUser(CodeScreen {
        verification_uri: "https://example.com/device".into(),
        qr_payload: format!("https://example.com/device?user_code={code}"),
        user_code: code.into(),
        message: None,
        remaining: Duration::from_secs(remaining),
        lifetime: Duration::from_secs(900),
        renewed: false,
        profile: None,
    })
}

fn stats(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let med = samples[samples.len() / 2];
    let best = samples[0];
    println!(
        "{name:<44} median {:>8.3} ms   best {:>8.3} ms   (n={})",
        med.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3,
        samples.len()
    );
}

/// English, or the pack of `locales/packs/` for `tag`.
fn language(tag: &str) -> Language {
    if tag == "en" {
        return Language::english();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("locales/packs")
        .join(format!("{tag}.pack"));
    let pack = devauth::locale::source::read_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Language::from_pack(pack).unwrap_or_else(|e| panic!("{tag}: {e}"))
}

fn bench_fb(
    name: &str,
    (w, h): (u32, u32),
    format: PixelFormat,
    safe: u32,
    runs: usize,
    language: &Language,
) {
    let name = &format!("{} {name}", language.tag());
    let dir = std::env::temp_dir();
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() { shm } else { dir.as_path() };
    let path = base.join(format!("devauth-bench-{}-{w}x{h}", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let d = DisplayConfig {
        backend: DisplayBackend::Framebuffer,
        device: path.clone(),
        width: Some(w),
        height: Some(h),
        format: Some(format),
        stride: Some(w * u32::from(format.bytes)),
        title_safe_percent: safe,
        resolved_language: language.clone(),
        ..DisplayConfig::default()
    };
    let mut fb = FbScreen::open(&d).unwrap();
    let mut full = Vec::new();
    for i in 0..runs {
        fb.invalidate();
        let v = view(800 - (i as u64 % 2));
        let t = Instant::now();
        fb.show(black_box(&v)).unwrap();
        full.push(t.elapsed());
    }
    stats(&format!("{name}: full draw + copy to framebuffer"), full);
    let mut fresh = Vec::new();
    for i in 0..runs {
        let v = code_view(800, &format!("NEW{i:04}-X"));
        let t = Instant::now();
        fb.show(black_box(&v)).unwrap();
        fresh.push(t.elapsed());
    }
    stats(
        &format!("{name}: new code (QR encoded) + full draw + copy"),
        fresh,
    );
    let mut ticks = Vec::new();
    fb.invalidate();
    fb.show(&view(899)).unwrap();
    for i in 0..runs {
        let v = view(898 - i as u64);
        let t = Instant::now();
        fb.show(black_box(&v)).unwrap();
        ticks.push(t.elapsed());
    }
    stats(&format!("{name}: countdown tick + copy"), ticks);
    let _ = std::fs::remove_file(&path);

    // Draw only, into the shadow canvas.
    let size = Size::new(w, h);
    let profile = d.profile();
    let mut canvas = Canvas::new(size, 0, format, Rotation::R0);
    let mut draw = Vec::new();
    for i in 0..runs {
        let mut p = Painter::new(size, profile.clone());
        let v = view(800 - (i as u64 % 2));
        let t = Instant::now();
        p.paint(black_box(&v), &mut canvas).unwrap();
        draw.push(t.elapsed());
    }
    stats(&format!("{name}: full draw into the canvas"), draw);
}

fn main() {
    let mut tags: Vec<String> = std::env::args().skip(1).collect();
    if tags.is_empty() {
        tags.push("en".to_string());
    }
    println!("devauth screen benchmark (single thread)");
    for tag in &tags {
        let language = language(tag);
        bench_fb(
            "1920x1080 XRGB8888",
            (1920, 1080),
            PixelFormat::XRGB8888,
            5,
            60,
            &language,
        );
        bench_fb(
            "240x240 RGB565",
            (240, 240),
            PixelFormat::RGB565,
            0,
            300,
            &language,
        );
    }
}
