//! The screens in the viewer's language, end to end with the real binary: `[display] language`
//! and `locale_dir` (the packs of `locales/packs/`, so a build without compiled-in packs, as
//! under ci-cross, reads them as installed files), a whole pairing whose framebuffer is read
//! back and compared with what the library draws in that language, names in the pack's own
//! letters, the `--json` events naming the language, the terminal printing the language only
//! where it can show it, and `render --language` for every language.
#![cfg(feature = "fbdev")]

mod common;

use common::*;
use devauth::config::{DisplayBackend, DisplayConfig};
use devauth::screen::canvas::PixelFormat;
use devauth::screen::fbdev::FbScreen;
use devauth::screen::language::Language;
use devauth::screen::layout::{self, Item, Profile};
use devauth::screen::{Screen, View};
use embedded_graphics::prelude::Size;
use std::path::PathBuf;

const EMAIL: &str = "josé.müller@example.de";
const W: u32 = 480;
const H: u32 = 320;

fn packs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("locales/packs")
}

fn language(tag: &str) -> Language {
    let pack = devauth::locale::source::read_file(&packs_dir().join(format!("{tag}.pack")))
        .expect("the committed pack");
    Language::from_pack(pack).expect("a whole catalogue")
}

fn fb_config(path: &std::path::Path, tag: &str) -> DisplayConfig {
    DisplayConfig {
        backend: DisplayBackend::Framebuffer,
        device: path.to_path_buf(),
        width: Some(W),
        height: Some(H),
        format: Some(PixelFormat::XRGB8888),
        stride: Some(W * 4),
        tty: devauth::config::ConsoleTty::Off,
        resolved_language: language(tag),
        ..DisplayConfig::default()
    }
}

fn lang_toml(tag: &str) -> String {
    format!(
        "language = \"{tag}\"\nlocale_dir = \"{}\"\n",
        packs_dir().display()
    )
}

/// Pairs in `tag` with `name` in the ID token; returns the framebuffer bytes, the run's output
/// and the environment.
fn pair_in(tag: &str, name: &str) -> (Vec<u8>, Output, Env) {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .behavior(|b| {
            b.id_token_name = Some(name.to_string());
            b.id_token_email = Some(EMAIL.to_string());
        })
        .toml(&format!(
            "[display]\nbackend = \"framebuffer\"\ndevice = \"fb.raw\"\nwidth = {W}\nheight = {H}\n\
             format = \"xrgb8888\"\ntty = \"none\"\n{}",
            lang_toml(tag)
        ))
        .start();
    std::fs::write(env.dir().join("fb.raw"), b"").unwrap();
    let out = env.pair();
    let bytes = std::fs::read(env.dir().join("fb.raw")).expect("the framebuffer file");
    (bytes, out, env)
}

/// What the library draws for `view` in `tag` on the same framebuffer.
fn drawn(dir: &std::path::Path, tag: &str, view: &View) -> Vec<u8> {
    let path = dir.join("expected.raw");
    std::fs::write(&path, b"").unwrap();
    let mut screen = FbScreen::open(&fb_config(&path, tag)).expect("open");
    screen.show(view).expect("draw");
    drop(screen);
    std::fs::read(path).unwrap()
}

#[test]
fn a_pairing_in_another_script_greets_by_name_in_the_packs_letters() {
    for (tag, name) in [
        ("he", "דוד"),
        ("el", "Ελένη"),
        ("ru", "Дмитрий"),
        ("ko", "이정"),
    ] {
        let (bytes, out, env) = pair_in(tag, name);
        let code = &out.events_named("code")[0];
        assert_eq!(code["language"], tag, "{}", out.show());
        let view = View::Paired {
            account: Some(EMAIL.to_string()),
            name: Some(name.to_string()),
        };
        let profile = Profile {
            language: language(tag),
            ..Profile::default()
        };
        let l = layout::layout(&view, Size::new(W, H), &profile);
        assert!(l.omitted.is_empty(), "{tag}: {:?}", l.omitted);
        // The name is a value of the greeting, drawn with the pack's own letters (no u8g2
        // face), and the screen devauth drew is that layout, pixel for pixel.
        let greeting = l
            .items
            .iter()
            .find_map(|i| match i {
                Item::Shaped { shaped, .. } => shaped.values.iter().find(|v| v.slot == "name"),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{tag}: no greeting"));
        assert_eq!((greeting.text.as_str(), greeting.font), (name, None));
        assert!(
            bytes == drawn(env.dir(), tag, &view),
            "{tag}: the screen differs"
        );
        let nameless = View::Paired {
            account: Some(EMAIL.to_string()),
            name: None,
        };
        assert!(
            bytes != drawn(env.dir(), tag, &nameless),
            "{tag}: no greeting drawn"
        );
    }
}

#[test]
fn a_name_the_pack_has_no_letters_for_is_left_out() {
    let (bytes, out, env) = pair_in("he", "李雷");
    let nameless = View::Paired {
        account: Some(EMAIL.to_string()),
        name: None,
    };
    assert!(
        bytes == drawn(env.dir(), "he", &nameless),
        "not the nameless screen"
    );
    assert!(
        out.stderr.contains("left out") && out.stderr.contains("李雷"),
        "{}",
        out.show()
    );
}

#[test]
fn the_terminal_prints_the_language_where_it_can_show_it_and_json_names_it() {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .toml(&format!("[display]\n{}", lang_toml("ar")))
        .start();
    let title = language("ar")
        .words()
        .text(devauth::screen::catalog::Msg::CodeTitle);
    // --force: each call pairs again (the same store).
    let pair = |term: &str| {
        let out = env
            .cmd(&["pair", "--json", "--force"])
            .env("LANG", "C.UTF-8")
            .env("TERM", term)
            .run();
        out.code(exit::OK);
        assert_eq!(
            out.events_named("code")[0]["language"],
            "ar",
            "{}",
            out.show()
        );
        out
    };
    let out = pair("xterm-256color");
    assert!(out.stderr.contains(&title), "{}", out.show());
    // The code stays left to right in a bidi terminal: isolated.
    let user_code = out.events_named("code")[0]["user_code"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        out.stderr.contains(&format!("\u{2066}{user_code}")),
        "{}",
        out.show()
    );
    // The Linux console shows no Arabic: English, and the log says why.
    let out = pair("linux");
    assert!(!out.stderr.contains(&title), "{}", out.show());
    assert!(out.stderr.contains("Pair this device"), "{}", out.show());
    assert!(out.stderr.contains("cannot show ar"), "{}", out.show());
}

#[test]
fn auto_takes_the_language_from_the_environment() {
    let env = Setup::new(Provider::Generic)
        .approve_after_polls(0)
        .toml(&format!(
            "[display]\nbackend = \"none\"\nlocale_dir = \"{}\"\n",
            packs_dir().display()
        ))
        .start();
    // --force: each call pairs again (the same store).
    let language_of = |vars: &[(&str, &str)]| {
        let mut cmd = env.cmd(&["pair", "--json", "--force"]);
        for (k, v) in vars {
            cmd = cmd.env(k, *v);
        }
        let out = cmd.run();
        out.code(exit::OK);
        (
            out.events_named("code")[0]["language"]
                .as_str()
                .unwrap()
                .to_string(),
            out.stderr.clone(),
        )
    };
    assert_eq!(language_of(&[]).0, "en");
    assert_eq!(language_of(&[("LANG", "de_AT.UTF-8")]).0, "de");
    assert_eq!(
        language_of(&[("LANG", "de_DE.UTF-8"), ("LANGUAGE", "sv:zh_TW")]).0,
        "zh-Hant"
    );
    let (tag, log) = language_of(&[("LANG", "pt_PT.UTF-8")]);
    assert_eq!(tag, "pt-BR");
    assert!(log.contains("using pt-BR, the only pt one"), "{log}");
    let (tag, log) = language_of(&[("LC_ALL", "sv_SE.UTF-8")]);
    assert_eq!(tag, "en");
    assert!(log.contains("no pack for sv-SE; using English"), "{log}");
}

#[test]
fn render_draws_every_language_and_refuses_a_bad_tag() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("devauth.toml");
    // A whole config (render reads its [display] only when the file is a valid config): a
    // release binary has no pack compiled in and must find them in locale_dir.
    std::fs::write(
        &config,
        format!(
            "[provider]\nclient_id = \"x\"\nissuer = \"https://id.example\"\n[display]\n{}",
            lang_toml("auto")
        ),
    )
    .unwrap();
    let render = |board: &str, language: &str| {
        let out = dir.path().join(format!("{board}-{language}.png"));
        let o = TestCommand::bare(&["render", "--board", board, "--state", "code", "--out"])
            .arg(out.to_str().unwrap())
            .arg("--language")
            .arg(language)
            .env("DEVAUTH_CONFIG", &config)
            .run();
        (o, out)
    };
    let mut tags: Vec<String> = devauth::locale::source::available(&packs_dir());
    tags.push("en".into());
    assert_eq!(tags.len(), 20);
    for tag in &tags {
        let (o, png) = render("pi-st7789-240x240", tag);
        o.code(exit::OK);
        assert!(png.exists(), "{tag}");
        assert!(!o.stderr.contains("language:"), "{tag}: {}", o.show());
    }
    // Arabic on the 128x64 OLED: English, said in the log.
    let (o, _) = render("pi-ssd1306-128x64", "ar");
    o.code(exit::OK);
    assert!(
        o.stderr.contains("ar is not readable on a 128x64"),
        "{}",
        o.show()
    );
    // A language without a pack: English, said; not a tag: a usage error.
    let (o, _) = render("tv-720p", "sv");
    o.code(exit::OK);
    assert!(
        o.stderr.contains("no pack for sv; using English"),
        "{}",
        o.show()
    );
    let (o, png) = render("tv-720p", "Swedish!");
    o.code(exit::USAGE);
    assert!(o.stderr.contains("BCP 47"), "{}", o.show());
    assert!(!png.exists());
}

/// What `devauth render --board B --state S --language L` does, for every language, board and
/// state: the language resolved from `[display] language` and `locale_dir` as the command
/// resolves it, then the command's own check (`layout::fits`: the code and URL whole, inside
/// the margins, nothing overlapping; render refuses what fails it) for every combination, and
/// the command's `render::run` (the check, the PNG screen, the file) for one state per language
/// and board, the states taken in turn so each board renders every state. In process: 840 runs
/// of the binary, or 840 PNGs, would take minutes; drawing every combination is the sweep of
/// tests/display_boards.rs, and the binary renders every language above.
#[test]
#[cfg(feature = "png")]
fn render_works_for_every_language_board_and_state() {
    use devauth::cli::RenderState;
    use devauth::commands::render;
    use devauth::locale::choose::LanguageSetting;
    if std::env::var_os("DEVAUTH_TEST_RUNNER").is_some() {
        eprintln!("skipped: library-only test; it ran in the native pass");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut tags: Vec<String> = devauth::locale::source::available(&packs_dir());
    tags.push("en".into());
    assert_eq!(tags.len(), 20);
    let (mut checked, mut rendered) = (0, 0);
    for (t, tag) in tags.iter().enumerate() {
        for (b, (board, _)) in devauth::config::BUILTIN_BOARDS.iter().enumerate() {
            let mut d = devauth::config::board_display(board, None).unwrap();
            d.language = LanguageSetting::parse(tag).unwrap();
            d.locale_dir = packs_dir();
            d.resolve_language();
            assert_eq!(d.resolved_language.tag(), tag, "{board}: the pack found");
            let size = d.rotation.logical(d.size().unwrap());
            for state in RenderState::ALL {
                let view = render::sample_view(state);
                assert!(
                    layout::fits(&view, size, &d.profile()),
                    "{tag} {board} {}: render would refuse it",
                    state.name()
                );
                checked += 1;
            }
            let state = RenderState::ALL[(t + b) % RenderState::ALL.len()];
            let out = dir
                .path()
                .join(format!("{tag}-{board}-{}.png", state.name()));
            render::run(&d, state, &out)
                .unwrap_or_else(|e| panic!("render {tag} {board} {}: {e}", state.name()));
            let decoder =
                png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
            let info = decoder.read_info().unwrap();
            let (w, h) = (info.info().width, info.info().height);
            assert_eq!(Size::new(w, h), size, "{tag} {board} {}", state.name());
            std::fs::remove_file(&out).unwrap();
            rendered += 1;
        }
    }
    assert_eq!((checked, rendered), (20 * 6 * 7, 20 * 6));
}
