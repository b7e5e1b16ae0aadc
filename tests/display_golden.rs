//! Golden pictures: every PNG in docs/screens/ (made by scripts/render-screens.sh) must equal,
//! pixel for pixel, what `devauth render` draws now. An intended change: run the script and
//! commit the new pictures. On a mismatch the new picture is left in target/ to compare.
#![cfg(feature = "png")]

use devauth::cli::RenderState;
use devauth::commands::render::sample_view;
use devauth::config::board_display;
use devauth::screen::Screen;
use devauth::screen::png::PngScreen;
use std::path::Path;

fn pixels(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn screens_match_the_golden_pictures() {
    // The library draws these, not the binary under test: nothing to learn from running them
    // again beside a cross build under qemu (ci-cross's second pass), only 30 s to lose.
    if std::env::var_os("DEVAUTH_TEST_RUNNER").is_some() {
        eprintln!("skipped: library-only test; it ran in the native pass");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screens");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let golden = entry.unwrap().path();
        let stem = golden.file_stem().unwrap().to_str().unwrap().to_string();
        let (board, state) = stem.rsplit_once('-').unwrap();
        let state = RenderState::ALL
            .into_iter()
            .find(|s| s.name() == state)
            .unwrap();
        let d = board_display(board, None).unwrap();
        let fresh = out.join(format!("{stem}.png"));
        let mut screen = PngScreen::new(&fresh, d.size().unwrap(), d.rotation, d.profile());
        screen.show(&sample_view(state)).unwrap();
        assert!(
            pixels(&golden) == pixels(&fresh),
            "{stem}: the screen changed; compare {} with {} and, if intended, run scripts/render-screens.sh",
            golden.display(),
            fresh.display()
        );
        checked += 1;
    }
    assert!(checked >= 42, "only {checked} golden pictures");
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
