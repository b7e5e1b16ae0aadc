//! The bitmap faces the pixel screens draw with, their metrics, and making text drawable by them.
//!
//! Owns the choice of faces (u8g2 fonts, compiled in) and measuring text. It does not place text
//! (`layout/`) or draw it (`draw.rs`).
//!
//! Faces: "Free Universal" (fur/fub) for devauth's own words, Inconsolata Bold (inb) for the user
//! code — a monospace face whose 0 is slashed and whose 1, I and l differ (RFC 8628 §6.1: the
//! code is typed by a person) — and the X11 6×10 face on 128×64 OLEDs. These are ASCII-only
//! (`_tr`/`_mr`) to keep the binary small. Text from outside (the person's name, the account, the
//! device name, the provider's message) may hold any letter: where the tier's face lacks one, it
//! is drawn in [`FontId::Names`], a 16 px Unifont subset with ASCII, Latin-1, Latin Extended-A,
//! Greek and Cyrillic (`fonts/names_unifont.u8g2font`, made by `scripts/gen-names-font.py`);
//! what that face lacks too is left out by the layout, never drawn as `?`.
//!
//! Direction marks (LRM, RLM, ALM and the isolates LRI, RLI, FSI, PDI) are zero-width: measuring
//! and drawing skip them, so devauth's own marks around codes and URLs survive into the text
//! without showing. Server text never brings its own: [`sanitize`] strips them.

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
    /// Unifont subset for names and other text from outside (see the module doc).
    Names,
}

/// The compiled-in names face (see the module doc).
pub struct NamesFace;

impl u8g2_fonts::Font for NamesFace {
    const DATA: &'static [u8] = include_bytes!("../../fonts/names_unifont.u8g2font");
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
static NAMES: FontRenderer = FontRenderer::new::<NamesFace>();
/// The names face's box above the baseline: its height (16) plus its y offset (-2), bytes 10
/// and 12 of the u8g2 header.
const NAMES_ASCENT: u32 = 14;

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
            FontId::Names => &NAMES,
        }
    }

    /// The size (pixels per em) of a locale pack's glyphs that stand in for this face: the
    /// packs' tiers are matched to the faces by cap height (docs/locales.md).
    pub fn pack_px(self) -> u16 {
        match self {
            FontId::Tiny => 11,
            FontId::Regular11 | FontId::Bold11 | FontId::Code16 => 15,
            FontId::Regular14 | FontId::Bold14 | FontId::Names => 20,
            FontId::Regular20 | FontId::Bold20 | FontId::Code24 => 28,
            FontId::Regular30 | FontId::Bold30 | FontId::Code33 => 42,
            FontId::Bold42 | FontId::Code53 => 58,
        }
    }

    /// A bold face: a pack's glyphs stand in for it emboldened.
    pub fn is_bold(self) -> bool {
        matches!(
            self,
            FontId::Bold11 | FontId::Bold14 | FontId::Bold20 | FontId::Bold30 | FontId::Bold42
        )
    }

    /// Pixels above the baseline (unscaled). The names face's accented capitals (É, Ώ) rise
    /// above its "A": its whole glyph box counts.
    pub fn ascent(self) -> u32 {
        match self {
            FontId::Names => NAMES_ASCENT,
            _ => u32::try_from(self.renderer().get_ascent()).unwrap_or(0),
        }
    }

    /// Pixels below the baseline (unscaled).
    pub fn descent(self) -> u32 {
        u32::try_from(-i32::from(self.renderer().get_descent())).unwrap_or(0)
    }

    /// Height of one line of ink, ascent plus descent (unscaled).
    pub fn height(self) -> u32 {
        self.ascent() + self.descent()
    }

    /// Advance width of `text` (unscaled); direction marks take no room. A character the face
    /// lacks counts as nothing: check [`covers`](Self::covers) first.
    pub fn width(self, text: &str) -> u32 {
        self.renderer()
            .get_rendered_dimensions(
                visible(text).as_ref(),
                Point::zero(),
                VerticalPosition::Baseline,
            )
            .map(|d| u32::try_from(d.advance.x).unwrap_or(0))
            .unwrap_or(0)
    }

    /// Whether the face has a glyph for every character of `text` (direction marks aside).
    pub fn covers(self, text: &str) -> bool {
        let r = self.renderer();
        visible(text).chars().all(|c| {
            let mut buf = [0u8; 4];
            r.get_rendered_dimensions(
                &*c.encode_utf8(&mut buf),
                Point::zero(),
                VerticalPosition::Baseline,
            )
            .is_ok()
        })
    }

    /// The box of `text` drawn with its baseline at `y = ascent` (unscaled).
    pub fn ink_size(self, text: &str) -> Size {
        Size::new(self.width(text), self.height())
    }
}

/// Whether `c` is a direction mark: zero-width, never drawn, kept in devauth's own text.
pub fn is_direction_mark(c: char) -> bool {
    matches!(
        c,
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2066}'..='\u{2069}'
    )
}

/// `text` without its direction marks (what the bitmap faces draw).
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_direction_mark) {
        text.chars()
            .filter(|c| !is_direction_mark(*c))
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// Longest text from outside kept for the screen, in characters; longer text ends in "…".
pub const MAX_TEXT_CHARS: usize = 600;

/// Whether `c` must never come from outside onto a screen: controls (C0, DEL, C1), bidi
/// embeddings, overrides, isolates and marks (they reorder what a person reads), zero-width and
/// invisible formatting characters, the BOM and interlinear annotation marks.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || is_direction_mark(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200D}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2065}'
                | '\u{206A}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Text from outside (a name, an account, the provider's message, the device name) made safe
/// to lay out: line breaks and tabs become spaces, runs of spaces one, everything
/// [`is_hidden_or_control`] is removed (not replaced: nothing is drawn as `?`), and at most
/// [`MAX_TEXT_CHARS`] characters are kept. devauth's own direction marks are added after this,
/// so they are never stripped.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT_CHARS * 4));
    let mut n = 0;
    for c in text.chars() {
        let c = match c {
            '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => ' ',
            c if is_hidden_or_control(c) => continue,
            c => c,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if n == MAX_TEXT_CHARS {
            out.push('…');
            break;
        }
        out.push(c);
        n += 1;
    }
    out.trim_end().to_string()
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
            FontId::Names,
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
    fn sanitize_strips_what_reorders_or_hides_and_keeps_every_letter() {
        assert_eq!(sanitize("ABCD-1234"), "ABCD-1234");
        assert_eq!(sanitize("José\u{202e}Müller\u{200b}"), "JoséMüller");
        assert_eq!(sanitize("a\x1b[2Jb\u{2066}c\td\n\ne"), "a[2Jbc d e");
        assert_eq!(sanitize("  Ελένη  "), "Ελένη");
        assert_eq!(sanitize("\u{200f}\u{061c}\u{feff}"), "");
        let long = "x".repeat(MAX_TEXT_CHARS + 10);
        assert_eq!(sanitize(&long).chars().count(), MAX_TEXT_CHARS + 1);
    }

    #[test]
    fn direction_marks_take_no_room() {
        let f = FontId::Regular14;
        assert_eq!(f.width("\u{2066}WDJB-MJHT\u{2069}"), f.width("WDJB-MJHT"));
        assert!(f.covers("\u{2066}WDJB-MJHT\u{2069}\u{200e}"));
        assert!(!f.covers("José"));
    }

    /// The names face is the Unifont faces' own glyphs, re-packed: every glyph it holds draws
    /// the same pixels and advance as in the face it was taken from.
    #[test]
    fn the_names_face_draws_names_as_unifont_does() {
        use embedded_graphics::mock_display::MockDisplay;
        use embedded_graphics::pixelcolor::BinaryColor;
        use u8g2_fonts::types::FontColor;
        let sources: [(&FontRenderer, &str); 4] = [
            (
                &FontRenderer::new::<fonts::u8g2_font_unifont_t_latin>(),
                "José Müller ÆØÅ ñ ß @.-_+09",
            ),
            (
                &FontRenderer::new::<fonts::u8g2_font_unifont_t_extended>(),
                "Łódź Čeština Ő ű ğ ş",
            ),
            (
                &FontRenderer::new::<fonts::u8g2_font_unifont_t_greek>(),
                "Ελένη Ώώ ΐ",
            ),
            (
                &FontRenderer::new::<fonts::u8g2_font_unifont_t_cyrillic>(),
                "Дмитрий Їжак Ђђ ё",
            ),
        ];
        let draw = |r: &FontRenderer, c: char| {
            let mut d = MockDisplay::<BinaryColor>::new();
            d.set_allow_out_of_bounds_drawing(true);
            d.set_allow_overdraw(true);
            let dims = r
                .render(
                    c,
                    Point::new(8, 16),
                    VerticalPosition::Baseline,
                    FontColor::Transparent(BinaryColor::On),
                    &mut d,
                )
                .unwrap();
            (format!("{d:?}"), dims.advance)
        };
        for (source, text) in sources {
            assert!(FontId::Names.covers(text), "{text}");
            for c in text.chars().filter(|c| *c != ' ') {
                assert_eq!(draw(source, c), draw(FontId::Names.renderer(), c), "{c:?}");
            }
        }
        assert!(!FontId::Names.covers("李"));
        assert!(!FontId::Names.covers("مرحبا"));
    }
}
