//! The `png` backend: the pairing screen written to a PNG file on every change, for remote
//! support, kiosks that show a picture, and the docs (`devauth render`).
//!
//! Owns PNG encoding of a [`Canvas`] and replacing the file atomically (temp file in the same
//! directory, then rename), so a viewer never reads half a picture. It draws nothing itself.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use embedded_graphics::prelude::Size;

use super::canvas::{Canvas, PixelFormat, Rotation};
use super::layout::Profile;
use super::painter::{Painted, Painter};
use super::{Screen, View};
use crate::error::DisplayError;

/// A [`Screen`] that keeps a PNG file up to date.
pub struct PngScreen {
    path: PathBuf,
    canvas: Canvas,
    painter: Painter,
}

impl PngScreen {
    /// A screen of `size` (the panel, before `rotation`) written to `path`.
    pub fn new(path: &Path, size: Size, rotation: Rotation, profile: Profile) -> PngScreen {
        let canvas = Canvas::new(size, 0, PixelFormat::BGR888, rotation);
        let logical = rotation.logical(size);
        PngScreen {
            path: path.to_path_buf(),
            canvas,
            painter: Painter::new(logical, profile),
        }
    }

    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    pub fn painter(&self) -> &Painter {
        &self.painter
    }
}

impl Screen for PngScreen {
    fn show(&mut self, view: &View) -> Result<(), DisplayError> {
        let Ok(painted) = self.painter.paint(view, &mut self.canvas);
        if painted == Painted::Nothing {
            return Ok(());
        }
        self.canvas.take_dirty();
        write_png(&self.path, &self.canvas)
    }
}

/// The canvas as PNG bytes (8-bit RGB, in the panel's orientation).
pub fn encode(canvas: &Canvas) -> Result<Vec<u8>, DisplayError> {
    let size = canvas.physical_size();
    let mut rgb = Vec::with_capacity(size.width as usize * size.height as usize * 3);
    for y in 0..size.height {
        for x in 0..size.width {
            let c = canvas.pixel(x, y).unwrap_or_default();
            rgb.extend_from_slice(&[
                embedded_graphics::pixelcolor::RgbColor::r(&c),
                embedded_graphics::pixelcolor::RgbColor::g(&c),
                embedded_graphics::pixelcolor::RgbColor::b(&c),
            ]);
        }
    }
    let fail = |e: png::EncodingError| DisplayError::Unsupported(format!("png: encoding: {e}"));
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size.width, size.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Balanced);
        let mut writer = enc.write_header().map_err(fail)?;
        writer.write_image_data(&rgb).map_err(fail)?;
        writer.finish().map_err(fail)?;
    }
    Ok(out)
}

/// Writes the canvas to `path` atomically.
pub fn write_png(path: &Path, canvas: &Canvas) -> Result<(), DisplayError> {
    let bytes = encode(canvas)?;
    let io = |what: String| move |source| DisplayError::Io { what, source };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "screen.png".to_string());
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
        f.write_all(&bytes)
            .map_err(io(format!("writing {}", tmp.display())))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io(format!("replacing {}", path.display())))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
