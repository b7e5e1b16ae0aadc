//! Names as written: a whole pairing against the test server whose ID token carries a `name`
//! claim, with the screen read back from the framebuffer file devauth drew into. The bytes must
//! be exactly what the library draws for "Welcome, <name>" over the account (so every letter
//! is drawn, in the names face); a name in a script without glyphs is left out, the screen is
//! byte for byte the one without a name (never a `?`), and the log says so.
#![cfg(feature = "fbdev")]

mod common;

use common::*;
use devauth::config::{DisplayBackend, DisplayConfig};
use devauth::screen::canvas::PixelFormat;
use devauth::screen::fbdev::FbScreen;
use devauth::screen::layout::{self, Profile, Role};
use devauth::screen::{Screen, View};
use embedded_graphics::prelude::Size;

const EMAIL: &str = "josé.müller@example.de";
const W: u32 = 480;
const H: u32 = 320;

fn fb_config(path: &std::path::Path) -> DisplayConfig {
    DisplayConfig {
        backend: DisplayBackend::Framebuffer,
        device: path.to_path_buf(),
        width: Some(W),
        height: Some(H),
        format: Some(PixelFormat::XRGB8888),
        stride: Some(W * 4),
        tty: devauth::config::ConsoleTty::Off,
        ..DisplayConfig::default()
    }
}

/// Pairs with `name` in the ID token; returns the framebuffer bytes and the run's stderr.
fn pair_with_name(name: &str) -> (Vec<u8>, String, Env) {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| {
            b.id_token_name = Some(name.to_string());
            b.id_token_email = Some(EMAIL.to_string());
        })
        .toml(&format!(
            "[display]\nbackend = \"framebuffer\"\ndevice = \"fb.raw\"\nwidth = {W}\nheight = {H}\n\
             format = \"xrgb8888\"\ntty = \"none\"\n"
        ))
        .start();
    std::fs::write(env.dir().join("fb.raw"), b"").unwrap();
    let out = env.pair();
    let stderr = out.stderr.clone();
    let bytes = std::fs::read(env.dir().join("fb.raw")).expect("the framebuffer file");
    (bytes, stderr, env)
}

/// What the library draws for `view` on the same framebuffer.
fn drawn(dir: &std::path::Path, view: &View) -> Vec<u8> {
    let path = dir.join("expected.raw");
    std::fs::write(&path, b"").unwrap();
    let mut screen = FbScreen::open(&fb_config(&path)).expect("open");
    screen.show(view).expect("draw");
    drop(screen);
    std::fs::read(path).unwrap()
}

#[test]
fn names_in_latin_greek_and_cyrillic_are_drawn_as_written() {
    for name in ["José Müller", "Ελένη", "Дмитрий"] {
        let (bytes, _, env) = pair_with_name(name);
        let view = View::Paired {
            account: Some(EMAIL.to_string()),
            name: Some(name.to_string()),
        };
        // The layout has the greeting and the account whole, nothing left out...
        let l = layout::layout(&view, Size::new(W, H), &Profile::default());
        let texts: Vec<&str> = l.texts().map(|t| t.text.as_str()).collect();
        assert!(
            texts.contains(&format!("Welcome, {name}").as_str()),
            "{texts:?}"
        );
        assert!(texts.iter().any(|t| t.contains(EMAIL)), "{texts:?}");
        assert!(texts.iter().all(|t| !t.contains('?')), "{texts:?}");
        assert!(l.omitted.is_empty(), "{:?}", l.omitted);
        assert!(l.texts().any(|t| t.role == Role::Good));
        // ...and the screen devauth drew is exactly that, pixel for pixel.
        assert!(
            bytes == drawn(env.dir(), &view),
            "{name}: the screen differs from the layout"
        );
        // Not the screen without a name: the name is really there.
        let nameless = View::Paired {
            account: Some(EMAIL.to_string()),
            name: None,
        };
        assert!(
            bytes != drawn(env.dir(), &nameless),
            "{name}: no greeting drawn"
        );
    }
}

#[test]
fn a_name_without_glyphs_is_left_out_never_question_marks() {
    let (bytes, stderr, env) = pair_with_name("李雷");
    let nameless = View::Paired {
        account: Some(EMAIL.to_string()),
        name: None,
    };
    assert!(
        bytes == drawn(env.dir(), &nameless),
        "the screen is not the one without a name"
    );
    assert!(
        stderr.contains("left out") && stderr.contains("李雷"),
        "{stderr}"
    );
}
