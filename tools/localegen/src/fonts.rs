//! Loading the Noto faces, shaping a run of text with harfrust, and rasterizing a glyph at a
//! pixel size with skrifa (hinted) and ab_glyph_rasterizer.

use std::collections::BTreeMap;

use ab_glyph_rasterizer::{Point, Rasterizer, point};
use harfrust::{Buffer, Direction, Language, Script, ShapeOptions, ShaperFont};
use skrifa::{DrawMemory, Font, GlyphId, HintOptions, PathSink, RasterTarget, ScalerFont};

use crate::languages::FontSpec;

/// Every face a run needs, loaded once.
#[derive(Default)]
pub struct Fonts {
    faces: BTreeMap<FontSpec, Font>,
}

impl Fonts {
    pub fn get(&mut self, spec: FontSpec) -> Result<&Font, String> {
        use std::collections::btree_map::Entry;
        match self.faces.entry(spec) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let path = spec.path();
                let data = std::fs::read(&path).map_err(|err| {
                    format!("{path}: {err} (install Debian's fonts-noto-core and fonts-noto-cjk)")
                })?;
                let font = Font::new(data, spec.face)
                    .ok_or_else(|| format!("{path}: no font at index {}", spec.face))?;
                Ok(e.insert(font))
            }
        }
    }
}

/// Whether `font` maps `c` to a glyph.
pub fn has_char(font: &Font, c: char) -> bool {
    font.charmap()
        .map_unicode(c)
        .is_some_and(|g| g.to_u32() != 0)
}

/// The nominal glyph of `c`, unshaped.
pub fn nominal(font: &Font, c: char) -> Option<u32> {
    font.charmap()
        .map_unicode(c)
        .map(|g| g.to_u32())
        .filter(|&g| g != 0)
}

/// One glyph of a shaped run, as harfrust (and HarfBuzz) put it: font units, visual order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapedGlyph {
    pub gid: u32,
    /// Byte offset, in the run's text, of the first character of this glyph's cluster.
    pub cluster: u32,
    pub x_advance: i32,
    pub x_offset: i32,
    pub y_offset: i32,
}

/// Shapes `text` with `font` (scale = units per em, as `hb-shape` does without --font-size).
pub fn shape(
    font: &Font,
    text: &str,
    rtl: bool,
    script: Script,
    language: &str,
) -> Result<Vec<ShapedGlyph>, String> {
    let shaper = ShaperFont::new(font);
    let mut buffer = Buffer::new();
    buffer.push_str(text);
    buffer.set_direction(if rtl {
        Direction::RightToLeft
    } else {
        Direction::LeftToRight
    });
    buffer.set_script(Some(script));
    buffer.set_language(Language::new(language));
    harfrust::shape(&shaper, &mut buffer, ShapeOptions::new())
        .map_err(|e| format!("shaping {text:?}: {e:?}"))?;
    Ok(buffer
        .glyph_infos()
        .iter()
        .zip(buffer.glyph_positions())
        .map(|(i, p)| ShapedGlyph {
            gid: i.glyph_id,
            cluster: i.cluster,
            x_advance: p.x_advance,
            x_offset: p.x_offset,
            y_offset: p.y_offset,
        })
        .collect())
}

/// A glyph's coverage at one pixel size: `width` × `height` values 0..=255, row by row from the
/// top; the top-left pixel is `left` px right of the pen and `top` px above the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    pub width: u32,
    pub height: u32,
    pub left: i32,
    pub top: i32,
    pub coverage: Vec<u8>,
}

/// Draws glyphs of one face at one size. Hinted: the fonts' own TrueType instructions (Noto's
/// are there), else the automatic hinter, in the light mode that moves points only vertically
/// and keeps the linear advances, so what the shaper placed stays where it was put; the
/// monochrome size is hinted for a 1-bit panel.
pub struct Raster {
    scaler: ScalerFont,
}

impl Raster {
    pub fn new(font: &Font, px: f32, mono: bool) -> Raster {
        let options = if mono {
            HintOptions::auto_fallback().with_target(RasterTarget::Mono)
        } else {
            HintOptions::auto_fallback()
                .with_target(RasterTarget::Light)
                .with_preserve_linear_metrics(true)
        };
        Raster {
            scaler: ScalerFont::hinted(font.clone(), px, options),
        }
    }

    pub fn glyph(&self, gid: u32) -> Result<Bitmap, String> {
        let Some(outline) = self.scaler.outline(GlyphId::new(gid)) else {
            return Ok(Bitmap::empty());
        };
        let mut path = Path::default();
        outline
            .draw(DrawMemory::Scratch, &mut path)
            .map_err(|e| format!("glyph {gid}: {e:?}"))?;
        Ok(path.rasterize())
    }
}

impl Bitmap {
    pub fn empty() -> Bitmap {
        Bitmap {
            width: 0,
            height: 0,
            left: 0,
            top: 0,
            coverage: Vec::new(),
        }
    }
}

/// An outline in pixels, y up, as the scaler draws it.
#[derive(Default)]
struct Path {
    segments: Vec<Segment>,
    start: (f32, f32),
    at: (f32, f32),
}

enum Segment {
    Line([(f32, f32); 2]),
    Quad([(f32, f32); 3]),
    Cubic([(f32, f32); 4]),
}

impl PathSink for Path {
    fn move_to(&mut self, x: f32, y: f32) {
        self.close();
        self.start = (x, y);
        self.at = (x, y);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        self.segments.push(Segment::Line([self.at, (x, y)]));
        self.at = (x, y);
    }
    fn quad_to(&mut self, cx0: f32, cy0: f32, x: f32, y: f32) {
        self.segments
            .push(Segment::Quad([self.at, (cx0, cy0), (x, y)]));
        self.at = (x, y);
    }
    fn curve_to(&mut self, cx0: f32, cy0: f32, cx1: f32, cy1: f32, x: f32, y: f32) {
        self.segments
            .push(Segment::Cubic([self.at, (cx0, cy0), (cx1, cy1), (x, y)]));
        self.at = (x, y);
    }
    fn close(&mut self) {
        if self.at != self.start {
            self.segments.push(Segment::Line([self.at, self.start]));
            self.at = self.start;
        }
    }
}

impl Path {
    fn points(&self) -> impl Iterator<Item = (f32, f32)> + '_ {
        self.segments.iter().flat_map(|s| match s {
            Segment::Line(p) => p.to_vec(),
            Segment::Quad(p) => p.to_vec(),
            Segment::Cubic(p) => p.to_vec(),
        })
    }

    fn rasterize(mut self) -> Bitmap {
        self.close();
        let mut pts = self.points().peekable();
        if pts.peek().is_none() {
            return Bitmap::empty();
        }
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        // Control points bound the curve, so the box holds all ink.
        let left = x0.floor() as i32;
        let right = x1.ceil() as i32;
        let bottom = y0.floor() as i32;
        let top = y1.ceil() as i32;
        let (w, h) = (
            (right - left).max(0) as usize,
            (top - bottom).max(0) as usize,
        );
        if w == 0 || h == 0 {
            return Bitmap::empty();
        }
        // To raster space: x from the box's left, y down from its top.
        let map = |(x, y): (f32, f32)| -> Point { point(x - left as f32, top as f32 - y) };
        let mut r = Rasterizer::new(w, h);
        for s in &self.segments {
            match s {
                Segment::Line([a, b]) => r.draw_line(map(*a), map(*b)),
                Segment::Quad([a, c, b]) => r.draw_quad(map(*a), map(*c), map(*b)),
                Segment::Cubic([a, c0, c1, b]) => {
                    r.draw_cubic(map(*a), map(*c0), map(*c1), map(*b))
                }
            }
        }
        let mut coverage = vec![0u8; w * h];
        r.for_each_pixel(|i, a| {
            if let Some(px) = coverage.get_mut(i) {
                *px = (a.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        });
        trim(Bitmap {
            width: w as u32,
            height: h as u32,
            left,
            top,
            coverage,
        })
    }
}

/// `b` without blank rows and columns at its edges.
fn trim(b: Bitmap) -> Bitmap {
    let (w, h) = (b.width as usize, b.height as usize);
    let at = |x: usize, y: usize| b.coverage[y * w + x];
    let row_blank = |y: usize| (0..w).all(|x| at(x, y) == 0);
    let col_blank = |x: usize| (0..h).all(|y| at(x, y) == 0);
    let Some(y0) = (0..h).find(|&y| !row_blank(y)) else {
        return Bitmap::empty();
    };
    let y1 = (0..h).rev().find(|&y| !row_blank(y)).unwrap_or(y0);
    let x0 = (0..w).find(|&x| !col_blank(x)).unwrap_or(0);
    let x1 = (0..w).rev().find(|&x| !col_blank(x)).unwrap_or(x0);
    let mut coverage = Vec::with_capacity((x1 - x0 + 1) * (y1 - y0 + 1));
    for y in y0..=y1 {
        for x in x0..=x1 {
            coverage.push(at(x, y));
        }
    }
    Bitmap {
        width: (x1 - x0 + 1) as u32,
        height: (y1 - y0 + 1) as u32,
        left: b.left + x0 as i32,
        top: b.top - y0 as i32,
        coverage,
    }
}
