//! Golden pictures: every PNG in docs/screens/ must equal, pixel for pixel, what `devauth
//! render` draws now: the English ones (made by scripts/render-screens.sh) for every board in
//! every state, and those of each other language in docs/screens/<tag>/ (1080p and 240x240, every
//! state; written by this test with `DEVAUTH_BLESS=1`, as scripts/render-screens.sh does, in
//! indexed colour: a screen has a few dozen colours). An intended change: run the script and
//! commit the new pictures. On a mismatch the new picture is left in target/ to compare.
#![cfg(feature = "png")]

mod common;

use devauth::cli::RenderState;
use devauth::commands::render::sample_view;
use devauth::config::{DisplayConfig, board_display};
use devauth::screen::Screen;
use devauth::screen::canvas::{Canvas, MonoCanvas, PixelFormat, Rotation};
use devauth::screen::language::Language;
use devauth::screen::layout::Theme;
use devauth::screen::painter::Painter;
use devauth::screen::png::{PngScreen, Surface};
use std::path::Path;

/// The boards each language's pictures are drawn on.
const LANGUAGE_BOARDS: [&str; 2] = ["tv-1080p", "pi-st7789-240x240"];

fn pixels(path: &Path) -> (u32, u32, Vec<u8>) {
    let mut decoder =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    // Indexed pictures come out as their RGB colours.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// What `devauth render` draws for `state` on `d`, as RGB rows (drawn in memory: the PNG
/// encoder is not what is tested).
fn drawn(d: &DisplayConfig, state: RenderState) -> (u32, u32, Vec<u8>) {
    let logical = d.rotation.logical(d.size().unwrap());
    let profile = d.profile();
    let mut painter = Painter::new(logical, profile.clone());
    let view = sample_view(state);
    if profile.mono {
        let mut m = MonoCanvas::new(logical, Rotation::R0);
        let Ok(_) = painter.paint(&view, &mut m);
        let (size, rgb) = Surface::Mono(&m).rgb();
        return (size.width, size.height, rgb);
    }
    // Bytes R, G, B in memory, rows without padding: the PNG's pixels as they are.
    let mut c = Canvas::new(logical, 0, PixelFormat::BGR888, Rotation::R0);
    let Ok(_) = painter.paint(&view, &mut c);
    assert_eq!(c.stride(), logical.width as usize * 3);
    (logical.width, logical.height, c.bytes().to_vec())
}

/// The picture as an indexed PNG when it has at most 256 colours (a third of the RGB size).
fn write_indexed(path: &Path, (w, h, rgb): &(u32, u32, Vec<u8>)) {
    let mut palette: Vec<[u8; 3]> = Vec::new();
    let mut index = Vec::with_capacity(rgb.len() / 3);
    for px in rgb.chunks(3) {
        let c = [px[0], px[1], px[2]];
        let i = match palette.iter().position(|p| *p == c) {
            Some(i) => i,
            None => {
                palette.push(c);
                palette.len() - 1
            }
        };
        index.push(i as u8);
    }
    assert!(
        palette.len() <= 256,
        "{}: {} colours",
        path.display(),
        palette.len()
    );
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, *w, *h);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(palette.concat());
        enc.set_compression(png::Compression::High);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&index).unwrap();
        writer.finish().unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, out).unwrap();
}

/// Compares `fresh` with the golden picture at `golden` (or writes it, blessing); on a
/// mismatch leaves the fresh picture in target/ and says where.
fn compare(golden: &Path, fresh: (u32, u32, Vec<u8>), name: &str, problems: &mut Vec<String>) {
    if std::env::var_os("DEVAUTH_BLESS").is_some() {
        write_indexed(golden, &fresh);
        return;
    }
    if golden.exists() && pixels(golden) == fresh {
        return;
    }
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.png", name.replace('/', "-")));
    write_indexed(&out, &fresh);
    problems.push(format!(
        "{name}: the screen changed; compare {} with {} and, if intended, run scripts/render-screens.sh",
        golden.display(),
        out.display()
    ));
}

fn skip_under_a_runner() -> bool {
    // The library draws these, not the binary under test: nothing to learn from running them
    // again beside a cross build under qemu (ci-cross's second pass), only time to lose.
    let skip = std::env::var_os("DEVAUTH_TEST_RUNNER").is_some();
    if skip {
        eprintln!("skipped: library-only test; it ran in the native pass");
    }
    skip
}

#[test]
fn screens_match_the_golden_pictures() {
    if skip_under_a_runner() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screens");
    let mut checked = 0;
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let golden = entry.unwrap().path();
        if golden.is_dir() {
            continue; // another language's pictures
        }
        let stem = golden.file_stem().unwrap().to_str().unwrap().to_string();
        let (board, state) = stem.rsplit_once('-').unwrap();
        let state = RenderState::ALL
            .into_iter()
            .find(|s| s.name() == state)
            .unwrap();
        let d = board_display(board, None).unwrap();
        if std::env::var_os("DEVAUTH_BLESS").is_some() {
            // The English pictures are devauth render's own (scripts/render-screens.sh).
            let mut screen = PngScreen::new(&golden, d.size().unwrap(), d.rotation, d.profile());
            screen.show(&sample_view(state)).unwrap();
        } else {
            compare(&golden, drawn(&d, state), &stem, &mut problems);
        }
        checked += 1;
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(checked >= 42, "only {checked} golden pictures");
}

/// Each language of `locales/packs/` on a TV and a small panel, in every state.
#[test]
fn every_language_matches_its_golden_pictures() {
    if skip_under_a_runner() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let packs = root.join("locales/packs");
    let tags = devauth::locale::source::available(&packs);
    assert_eq!(tags.len(), 19);
    let mut problems = Vec::new();
    let mut checked = 0;
    for tag in &tags {
        let pack = devauth::locale::source::read_file(&packs.join(format!("{tag}.pack"))).unwrap();
        let language = Language::from_pack(pack).unwrap();
        for board in LANGUAGE_BOARDS {
            let d = DisplayConfig {
                resolved_language: language.clone(),
                ..board_display(board, None).unwrap()
            };
            for state in RenderState::ALL {
                let name = format!("{tag}/{board}-{}", state.name());
                let golden = root.join(format!("docs/screens/{name}.png"));
                compare(&golden, drawn(&d, state), &name, &mut problems);
                checked += 1;
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // Nothing else in the languages' folders: a picture of a removed state or board is stale.
    let files: usize = tags
        .iter()
        .map(|t| std::fs::read_dir(root.join("docs/screens").join(t)).map_or(0, |d| d.count()))
        .sum();
    assert_eq!(files, checked, "stale pictures in docs/screens/<tag>/");
}

/// `render --size` refuses a size too small to show the code whole, naming the smallest of its
/// shape that works, and that size then renders.
#[test]
fn render_refuses_a_size_too_small_for_the_code() {
    let bin = env!("CARGO_BIN_EXE_devauth");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let run = |size: &str| {
        std::process::Command::new(bin)
            .args(["render", "--size", size, "--state", "code", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let small = run("60x30");
    assert_eq!(small.status.code(), Some(2));
    let err = String::from_utf8_lossy(&small.stderr);
    assert!(
        err.contains("60x30 is too small to show the code whole"),
        "{err}"
    );
    let smallest = err
        .split("works is ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("a size named");
    assert!(!out.exists());
    assert_eq!(run(smallest).status.code(), Some(0), "{smallest}");
    assert!(out.exists());
    // One pixel narrower, same shape (60:30), does not work.
    let w: u32 = smallest.split_once('x').unwrap().0.parse().unwrap();
    let narrower = format!("{}x{}", w - 1, (w - 1) * 30 / 60);
    assert_eq!(run(&narrower).status.code(), Some(2), "{narrower}");
}

/// The PNG of a monochrome board (drawn on a colour surface in white and black, so the drawing
/// code is in the binary once) has exactly the pixels the panel's one-bit canvas gets, in every
/// theme, language and state.
#[test]
fn a_monochrome_board_s_png_has_the_panel_s_pixels() {
    if skip_under_a_runner() {
        return;
    }
    let languages = common::languages();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("screen.png");
    let mut checked = 0;
    for (board, _) in devauth::config::BUILTIN_BOARDS {
        let board = board_display(board, None).unwrap();
        if !board.profile().mono {
            continue;
        }
        for theme in [Theme::Dark, Theme::Light, Theme::HighContrast] {
            for language in &languages {
                let d = DisplayConfig {
                    theme,
                    resolved_language: language.clone(),
                    ..board.clone()
                };
                for state in RenderState::ALL {
                    let mut screen =
                        PngScreen::new(&out, d.size().unwrap(), d.rotation, d.profile());
                    screen.show(&sample_view(state)).unwrap();
                    let what = format!("{theme:?} {} {}", language.tag(), state.name());
                    assert!(pixels(&out) == drawn(&d, state), "{what}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 3 * 20 * 7, "only {checked}");
}
