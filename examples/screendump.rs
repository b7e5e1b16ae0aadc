//! Reads QEMU screendumps (binary PPM, `P6`) for scripts/kernel-test.sh, the real-kernel test:
//! decodes the QR codes in a dump as a phone's reader would (rqrr), compares two dumps, checks
//! that no console cursor block sits in the first character column, and writes a PNG a person
//! can open. Host-side test tooling only; nothing here runs on a device.
//!
//!     cargo run --release --example screendump -- qr DUMP.ppm        one payload per line
//!     cargo run --release --example screendump -- diff A.ppm B.ppm   exit 0 same, 1 different
//!     cargo run --release --example screendump -- cursor DUMP.ppm    exit 0 clean, 1 not
//!     cargo run --release --example screendump -- size DUMP.ppm      "WxH"
//!     cargo run --release --example screendump -- png DUMP.ppm OUT.png
//!
//! Exit 2 on a bad command line or a file that is not a screendump.

use std::collections::HashMap;
use std::fs;
use std::process::ExitCode;

/// Larger than any screen QEMU's std VGA offers (16384×16384 would be 768 MiB).
const MAX_PIXELS: usize = 8192 * 8192;

/// The console's first character column, which must hold only background: fbcon's cursor sits
/// there (top-left on a clear console, lower after boot text). 8 px: the 8×16 font fbcon picks
/// below 1920×1080; devauth's layout keeps a wider margin than that at the sizes tested.
const FIRST_COLUMN: u32 = 8;

/// A decoded PPM: RGB triples, row by row.
#[derive(Debug, PartialEq)]
struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        match self.rgb.get(i..i + 3) {
            Some(p) => [p[0], p[1], p[2]],
            None => [0, 0, 0],
        }
    }

    fn luma(&self, x: u32, y: u32) -> u8 {
        let [r, g, b] = self.pixel(x, y);
        ((u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000) as u8
    }
}

/// Parses a binary PPM (`P6`, maxval 255, `#` comments allowed in the header).
fn parse_ppm(bytes: &[u8]) -> Result<Image, String> {
    let mut pos = 0;
    let mut fields = Vec::new();
    while fields.len() < 4 {
        while let Some(c) = bytes.get(pos) {
            if c.is_ascii_whitespace() {
                pos += 1;
            } else if *c == b'#' {
                while bytes.get(pos).is_some_and(|c| *c != b'\n') {
                    pos += 1;
                }
            } else {
                break;
            }
        }
        let start = pos;
        while bytes.get(pos).is_some_and(|c| !c.is_ascii_whitespace()) && pos - start < 16 {
            pos += 1;
        }
        if start == pos {
            return Err("not a PPM: the header ends early".into());
        }
        fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
    }
    // Exactly one whitespace byte separates the header from the pixels.
    pos += 1;
    if fields[0] != "P6" {
        return Err(format!(
            "not a binary PPM: magic {:?}, expected P6",
            fields[0]
        ));
    }
    let number = |what: &str, s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("PPM header: {what} is not a number: {s:?}"))
    };
    let (width, height) = (number("width", &fields[1])?, number("height", &fields[2])?);
    if number("maxval", &fields[3])? != 255 {
        return Err(format!("PPM maxval {} not supported, only 255", fields[3]));
    }
    let pixels = width as usize * height as usize;
    if width == 0 || height == 0 || pixels > MAX_PIXELS {
        return Err(format!("PPM size {width}x{height} out of range"));
    }
    let rgb = bytes
        .get(pos..pos + pixels * 3)
        .ok_or_else(|| format!("PPM {width}x{height}: the pixel data is cut short"))?;
    Ok(Image {
        width,
        height,
        rgb: rgb.to_vec(),
    })
}

/// Every QR code rqrr finds in the image, decoded.
fn qr_payloads(img: &Image) -> Vec<String> {
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        img.width as usize,
        img.height as usize,
        |x, y| img.luma(x as u32, y as u32),
    );
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, s)| s))
        .collect()
}

/// Pixels that differ and their bounding box, or `None` when the images are the same.
fn difference(a: &Image, b: &Image) -> Result<Option<(usize, [u32; 4])>, String> {
    if (a.width, a.height) != (b.width, b.height) {
        return Err(format!(
            "sizes differ: {}x{} and {}x{}",
            a.width, a.height, b.width, b.height
        ));
    }
    let mut count = 0;
    let mut bbox = [u32::MAX, u32::MAX, 0, 0];
    for y in 0..a.height {
        for x in 0..a.width {
            if a.pixel(x, y) != b.pixel(x, y) {
                count += 1;
                bbox = [
                    bbox[0].min(x),
                    bbox[1].min(y),
                    bbox[2].max(x),
                    bbox[3].max(y),
                ];
            }
        }
    }
    Ok((count > 0).then_some((count, bbox)))
}

/// The most common colour: the screen's background.
fn background(img: &Image) -> [u8; 3] {
    let mut counts: HashMap<[u8; 3], usize> = HashMap::new();
    for y in (0..img.height).step_by(2) {
        for x in (0..img.width).step_by(2) {
            *counts.entry(img.pixel(x, y)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c)
        .unwrap_or([0, 0, 0])
}

/// Pixels in the first character column that are not background (a cursor block, console text).
fn cursor_marks(img: &Image) -> usize {
    let bg = background(img);
    let mut marks = 0;
    for y in 0..img.height {
        for x in 0..FIRST_COLUMN.min(img.width) {
            if img.pixel(x, y) != bg {
                marks += 1;
            }
        }
    }
    marks
}

fn write_png(img: &Image, path: &str) -> Result<(), String> {
    let fail = |e: png::EncodingError| format!("{path}: encoding PNG: {e}");
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, img.width, img.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(fail)?;
        writer.write_image_data(&img.rgb).map_err(fail)?;
        writer.finish().map_err(fail)?;
    }
    fs::write(path, out).map_err(|e| format!("{path}: {e}"))
}

fn load(path: &str) -> Result<Image, String> {
    let bytes = fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    parse_ppm(&bytes).map_err(|e| format!("{path}: {e}"))
}

/// Runs one command; `Ok(true)` is exit 0, `Ok(false)` exit 1.
fn command(args: &[String]) -> Result<bool, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["qr", path] => {
            for payload in qr_payloads(&load(path)?) {
                println!("{payload}");
            }
            Ok(true)
        }
        ["diff", a, b] => match difference(&load(a)?, &load(b)?)? {
            None => {
                println!("same");
                Ok(true)
            }
            Some((n, [x0, y0, x1, y1])) => {
                println!("{n} pixels differ, within x {x0}..={x1}, y {y0}..={y1}");
                Ok(false)
            }
        },
        ["cursor", path] => {
            let marks = cursor_marks(&load(path)?);
            if marks == 0 {
                println!("clean: the first {FIRST_COLUMN} px columns are background");
            } else {
                println!("{marks} non-background pixels in the first {FIRST_COLUMN} px columns");
            }
            Ok(marks == 0)
        }
        ["size", path] => {
            let img = load(path)?;
            println!("{}x{}", img.width, img.height);
            Ok(true)
        }
        ["png", path, out] => write_png(&load(path)?, out).map(|()| true),
        _ => Err("usage: screendump (qr F | diff A B | cursor F | size F | png F OUT)".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match command(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("screendump: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(w: u32, h: u32, px: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let mut out = format!("P6\n# a comment\n{w} {h}\n255\n").into_bytes();
        for y in 0..h {
            for x in 0..w {
                out.extend_from_slice(&px(x, y));
            }
        }
        out
    }

    /// A QR code drawn as QEMU would dump it: 6 px modules, light on a dark background.
    fn qr_picture(payload: &str) -> Vec<u8> {
        let code = qrcode::QrCode::new(payload.as_bytes()).unwrap();
        let modules = code.width() as u32;
        let dark = code.to_colors();
        let (scale, quiet, offset) = (6, 4, 100);
        let side = (modules + 2 * quiet) * scale;
        ppm(side + 2 * offset, side + 2 * offset, |x, y| {
            let inside = |v: u32| v >= offset && v < offset + side;
            if !(inside(x) && inside(y)) {
                return [20, 24, 32];
            }
            let (mx, my) = ((x - offset) / scale, (y - offset) / scale);
            let is_dark = mx >= quiet
                && my >= quiet
                && mx < quiet + modules
                && my < quiet + modules
                && dark[((my - quiet) * modules + (mx - quiet)) as usize] == qrcode::Color::Dark;
            if is_dark { [0, 0, 0] } else { [255, 255, 255] }
        })
    }

    #[test]
    fn a_drawn_qr_code_decodes_to_its_payload() {
        let url = "http://127.0.0.1:8765/device?user_code=WDJB-MJHT";
        let img = parse_ppm(&qr_picture(url)).unwrap();
        assert_eq!(qr_payloads(&img), vec![url.to_string()]);
    }

    #[test]
    fn a_plain_screen_has_no_qr_code_and_no_cursor() {
        let img = parse_ppm(&ppm(200, 100, |_, _| [20, 24, 32])).unwrap();
        assert!(qr_payloads(&img).is_empty());
        assert_eq!(cursor_marks(&img), 0);
    }

    #[test]
    fn a_cursor_block_in_the_first_column_is_found() {
        let img = parse_ppm(&ppm(200, 100, |x, y| {
            if x < 8 && (60..64).contains(&y) {
                [170, 170, 170]
            } else {
                [20, 24, 32]
            }
        }))
        .unwrap();
        assert_eq!(cursor_marks(&img), 32);
    }

    #[test]
    fn difference_counts_pixels_and_bounds_them() {
        let a = parse_ppm(&ppm(10, 10, |_, _| [0, 0, 0])).unwrap();
        let b = parse_ppm(&ppm(10, 10, |x, y| {
            if (x, y) == (2, 3) || (x, y) == (7, 5) {
                [255, 0, 0]
            } else {
                [0, 0, 0]
            }
        }))
        .unwrap();
        assert_eq!(difference(&a, &a).unwrap(), None);
        assert_eq!(difference(&a, &b).unwrap(), Some((2, [2, 3, 7, 5])));
        let c = parse_ppm(&ppm(10, 11, |_, _| [0, 0, 0])).unwrap();
        assert!(difference(&a, &c).unwrap_err().contains("sizes differ"));
    }

    #[test]
    fn broken_files_are_refused_with_a_reason() {
        let full = ppm(4, 4, |_, _| [1, 2, 3]);
        let cases: [(&[u8], &str); 5] = [
            (b"", "header ends early"),
            (b"P5\n4 4\n255\n", "expected P6"),
            (b"P6\n4 x\n255\n", "height is not a number"),
            (b"P6\n4 4\n65535\n", "maxval"),
            (&full[..full.len() - 1], "cut short"),
        ];
        for (bytes, want) in cases {
            let err = parse_ppm(bytes).unwrap_err();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
        assert!(
            parse_ppm(b"P6\n100000 100000\n255\n")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(parse_ppm(&full).unwrap().width, 4);
    }
}
