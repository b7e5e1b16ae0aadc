//! The bitmap faces the pixel screens draw with, their metrics, and making text drawable by them.
//!
//! Owns the choice of faces (u8g2 fonts, compiled in; ASCII-only `_tr`/`_mr` variants to keep the
//! binary small) and measuring text. It does not place text (`layout/`) or draw it (`draw.rs`).
//!
//! Faces: "Free Universal" (fur/fub) for prose, Inconsolata Bold (inb) for the user code — a
//! monospace face whose 0 is slashed and whose 1, I and l differ (RFC 8628 §6.1: the code is
//! typed by a person) — and the X11 6×10 face on 128×64 OLEDs.

use embedded_graphics::prelude::{Point, Size};
use u8g2_fonts::types::VerticalPosition;
use u8g2_fonts::{FontRenderer, fonts};

/// One compiled-in face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FontId {
    /// X11 6×10: prose on 128×64 OLEDs.
    Tiny,
    Regular11,
    Regular14,
    Regular20,
    Regular30,
    Bold11,
    Bold14,
    Bold20,
    Bold30,
    Bold42,
    /// Inconsolata Bold, for the user code.
    Code16,
    Code24,
    Code33,
    Code53,
}

static TINY: FontRenderer = FontRenderer::new::<fonts::u8g2_font_6x10_tr>();
static REGULAR11: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fur11_tr>();
static REGULAR14: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fur14_tr>();
static REGULAR20: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fur20_tr>();
static REGULAR30: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fur30_tr>();
static BOLD11: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fub11_tr>();
static BOLD14: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fub14_tr>();
static BOLD20: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fub20_tr>();
static BOLD30: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fub30_tr>();
static BOLD42: FontRenderer = FontRenderer::new::<fonts::u8g2_font_fub42_tr>();
static CODE16: FontRenderer = FontRenderer::new::<fonts::u8g2_font_inb16_mr>();
static CODE24: FontRenderer = FontRenderer::new::<fonts::u8g2_font_inb24_mr>();
static CODE33: FontRenderer = FontRenderer::new::<fonts::u8g2_font_inb33_mr>();
static CODE53: FontRenderer = FontRenderer::new::<fonts::u8g2_font_inb53_mr>();

impl FontId {
    pub fn renderer(self) -> &'static FontRenderer {
        match self {
            FontId::Tiny => &TINY,
            FontId::Regular11 => &REGULAR11,
            FontId::Regular14 => &REGULAR14,
            FontId::Regular20 => &REGULAR20,
            FontId::Regular30 => &REGULAR30,
            FontId::Bold11 => &BOLD11,
            FontId::Bold14 => &BOLD14,
            FontId::Bold20 => &BOLD20,
            FontId::Bold30 => &BOLD30,
            FontId::Bold42 => &BOLD42,
            FontId::Code16 => &CODE16,
            FontId::Code24 => &CODE24,
            FontId::Code33 => &CODE33,
            FontId::Code53 => &CODE53,
        }
    }

    /// Pixels above the baseline (unscaled).
    pub fn ascent(self) -> u32 {
        u32::try_from(self.renderer().get_ascent()).unwrap_or(0)
    }

    /// Pixels below the baseline (unscaled).
    pub fn descent(self) -> u32 {
        u32::try_from(-i32::from(self.renderer().get_descent())).unwrap_or(0)
    }

    /// Height of one line of ink, ascent plus descent (unscaled).
    pub fn height(self) -> u32 {
        self.ascent() + self.descent()
    }

    /// Advance width of `text` (unscaled). `text` must be [`drawable`].
    pub fn width(self, text: &str) -> u32 {
        self.renderer()
            .get_rendered_dimensions(text, Point::zero(), VerticalPosition::Baseline)
            .map(|d| u32::try_from(d.advance.x).unwrap_or(0))
            .unwrap_or(0)
    }

    /// The ink box of `text` drawn with its baseline at `y = ascent` (unscaled), if any ink.
    pub fn ink_size(self, text: &str) -> Size {
        Size::new(self.width(text), self.height())
    }
}

/// Longest text drawn as one block; anything longer is cut (with "...") by the layout.
pub const MAX_TEXT_CHARS: usize = 600;

/// `text` with everything the faces cannot draw replaced: printable ASCII is kept, a tab or
/// line break becomes a space, and every other character (controls, bidi overrides, letters
/// outside ASCII) becomes `?`. Server text is untrusted; this also bounds its length.
pub fn drawable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT_CHARS));
    for (i, c) in text.chars().enumerate() {
        if i >= MAX_TEXT_CHARS {
            out.push_str("...");
            break;
        }
        out.push(match c {
            ' '..='~' => c,
            '\t' | '\n' | '\r' => ' ',
            '\u{2026}' => '.',
            '\u{2013}' | '\u{2014}' => '-',
            _ => '?',
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_face_measures_ascii() {
        for f in [
            FontId::Tiny,
            FontId::Regular11,
            FontId::Regular14,
            FontId::Regular20,
            FontId::Regular30,
            FontId::Bold11,
            FontId::Bold14,
            FontId::Bold20,
            FontId::Bold30,
            FontId::Bold42,
            FontId::Code16,
            FontId::Code24,
            FontId::Code33,
            FontId::Code53,
        ] {
            let all: String = (' '..='~').collect();
            assert!(f.width(&all) > 0, "{f:?}");
            assert!(f.height() > 0, "{f:?}");
            // The code face is monospace: confusable characters take the same room.
            if matches!(f, FontId::Code16 | FontId::Code53) {
                assert_eq!(f.width("0O1Il"), f.width("WWWWW"), "{f:?}");
            }
        }
    }

    #[test]
    fn drawable_replaces_what_the_faces_lack() {
        assert_eq!(drawable("ABCD-1234"), "ABCD-1234");
        assert_eq!(drawable("a\x1b[2Jb\u{202e}c\té"), "a?[2Jb?c ?");
        let long = "x".repeat(MAX_TEXT_CHARS + 10);
        assert_eq!(drawable(&long).len(), MAX_TEXT_CHARS + 3);
    }
}
