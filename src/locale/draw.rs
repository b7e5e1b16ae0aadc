//! Painting pre-shaped lines and plain numbers from a pack's atlas on any embedded-graphics
//! `DrawTarget`: 4-bit coverage blended between the text and background colours, 1-bit
//! glyphs (and 4-bit ones on a monochrome panel) as lit pixels. Only ink is drawn; the
//! background is left as it was.

use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::{BinaryColor, Rgb565, Rgb888, RgbColor};
use embedded_graphics::prelude::{DrawTarget, PixelColor, Point};

use super::line::{Line, Piece};
use super::pack::{GPOS, ITEM, Pack, Tier, i16_at, row_bytes, u8_at, u16_at};

/// A colour a glyph's coverage can be drawn in.
pub trait Blend: PixelColor {
    /// `fg` over `bg` at `alpha` of 15, or `None` where nothing should be drawn.
    fn blend(fg: Self, bg: Self, alpha: u8) -> Option<Self>;
}

fn mix(fg: u8, bg: u8, alpha: u8) -> u8 {
    let (f, b, a) = (u16::from(fg), u16::from(bg), u16::from(alpha.min(15)));
    u8::try_from((f * a + b * (15 - a) + 7) / 15).unwrap_or(u8::MAX)
}

impl Blend for Rgb888 {
    fn blend(fg: Self, bg: Self, alpha: u8) -> Option<Self> {
        (alpha > 0).then(|| {
            Rgb888::new(
                mix(fg.r(), bg.r(), alpha),
                mix(fg.g(), bg.g(), alpha),
                mix(fg.b(), bg.b(), alpha),
            )
        })
    }
}

impl Blend for Rgb565 {
    fn blend(fg: Self, bg: Self, alpha: u8) -> Option<Self> {
        (alpha > 0).then(|| {
            Rgb565::new(
                mix(fg.r(), bg.r(), alpha),
                mix(fg.g(), bg.g(), alpha),
                mix(fg.b(), bg.b(), alpha),
            )
        })
    }
}

impl Blend for BinaryColor {
    /// Half covered or more is lit: the glyph keeps its weight on a 1-bit panel.
    fn blend(fg: Self, _bg: Self, alpha: u8) -> Option<Self> {
        (alpha >= 8).then_some(fg)
    }
}

/// Text colour over background colour, and whether to embolden (titles: each glyph's
/// coverage smeared [`Tier::bold_px`] to the right, as FreeType's synthetic bold does; the
/// packs carry one weight).
#[derive(Debug, Clone, Copy)]
pub struct Ink<C> {
    pub fg: C,
    pub bg: C,
    pub bold: bool,
}

impl Pack {
    /// `x` × px / upem, rounded.
    fn scale(&self, v: i64, px: i64) -> i32 {
        let upem = i64::from(self.upem);
        i32::try_from((v * px).div_euclid(upem) + i64::from((v * px).rem_euclid(upem) * 2 >= upem))
            .unwrap_or(0)
    }

    fn draw_glyph<D>(
        &self,
        tier: &Tier,
        glyph: usize,
        at: Point,
        ink: Ink<D::Color>,
        target: &mut D,
    ) -> Result<(), D::Error>
    where
        D: DrawTarget,
        D::Color: Blend,
    {
        let d = self.bytes();
        let b = self.glyph_box(d, tier, glyph);
        let row = row_bytes(b.width, tier.mono);
        let base = self.s.bits.start + tier.bits + b.offset;
        let origin = at + Point::new(b.left, -b.top);
        let coverage = move |x: u32, y: u32| -> u8 {
            if x >= b.width {
                return 0;
            }
            let at = base + y as usize * row;
            if tier.mono {
                if u8_at(d, at + x as usize / 8) & (0x80 >> (x % 8)) != 0 {
                    15
                } else {
                    0
                }
            } else {
                let byte = u8_at(d, at + x as usize / 2);
                if x % 2 == 0 { byte >> 4 } else { byte & 0x0f }
            }
        };
        // Synthetic bold: each pixel also covers the `extra` ones to its right.
        let extra = if ink.bold { tier.bold_px() } else { 0 };
        let pixels = (0..b.height).flat_map(move |y| {
            (0..b.width + extra).filter_map(move |x| {
                let alpha = (x.saturating_sub(extra)..=x)
                    .map(|x| coverage(x, y))
                    .max()
                    .unwrap_or(0);
                let c = D::Color::blend(ink.fg, ink.bg, alpha)?;
                Some(Pixel(origin + Point::new(x as i32, y as i32), c))
            })
        });
        target.draw_iter(pixels)
    }

    /// Draws the pack's runs of `line` (placeholders are the caller's: [`Piece::Slot`]) with
    /// the line's top-left at `top_left`; the baseline is `tier.ascent` below it.
    pub fn draw_line<D>(
        &self,
        tier: &Tier,
        line: &Line,
        top_left: Point,
        ink: Ink<D::Color>,
        target: &mut D,
    ) -> Result<(), D::Error>
    where
        D: DrawTarget,
        D::Color: Blend,
    {
        let d = self.bytes();
        let px = i64::from(tier.px);
        let baseline = top_left + Point::new(0, i32::from(tier.ascent));
        for piece in &line.pieces {
            let Piece::Run { x, item } = piece else {
                continue;
            };
            let ia = self.s.items.start + usize::from(*item) * ITEM;
            let (first, n) = (
                usize::from(u16_at(d, ia + 2)),
                usize::from(u16_at(d, ia + 4)),
            );
            // Pen in fine units (font units × px): rounded once per glyph, not accumulated.
            let mut pen = i64::from(*x);
            for g in first..first + n {
                let at = self.s.gpos.start + g * GPOS;
                let glyph = usize::from(u16_at(d, at));
                let x_off = i64::from(i16_at(d, at + 4)) * px;
                let y_off = i64::from(i16_at(d, at + 6));
                let gx = self.scale(pen + x_off, 1);
                let gy = self.scale(y_off, px);
                self.draw_glyph(tier, glyph, baseline + Point::new(gx, -gy), ink, target)?;
                pen += i64::from(i16_at(d, at + 2)) * px;
            }
        }
        Ok(())
    }

    /// Where the ink of `line`'s runs reaches, in pixels from the line's left: glyphs may
    /// overhang their advances (the hook of a "j", a swash), and `bold` widens each glyph.
    /// `(0, line.width)` at least.
    pub fn line_ink(&self, tier: &Tier, line: &Line, bold: bool) -> (i32, i32) {
        let d = self.bytes();
        let px = i64::from(tier.px);
        let extra = if bold { tier.bold_px() as i32 } else { 0 };
        let (mut left, mut right) = (0, i32::try_from(line.width).unwrap_or(i32::MAX));
        for piece in &line.pieces {
            let Piece::Run { x, item } = piece else {
                continue;
            };
            let ia = self.s.items.start + usize::from(*item) * ITEM;
            let (first, n) = (
                usize::from(u16_at(d, ia + 2)),
                usize::from(u16_at(d, ia + 4)),
            );
            let mut pen = i64::from(*x);
            for g in first..first + n {
                let at = self.s.gpos.start + g * GPOS;
                let b = self.glyph_box(d, tier, usize::from(u16_at(d, at)));
                if b.width > 0 {
                    let gx = self.scale(pen + i64::from(i16_at(d, at + 4)) * px, 1) + b.left;
                    left = left.min(gx);
                    right = right.max(gx + b.width as i32 + extra);
                }
                pen += i64::from(i16_at(d, at + 2)) * px;
            }
        }
        (left, right)
    }

    /// Width in px of `text` drawn unshaped from the pack's character map (digits, `:` and the
    /// like), or `None` when the pack lacks a character.
    pub fn plain_width(&self, tier: &Tier, text: &str) -> Option<u32> {
        let mut units = 0i64;
        for c in text.chars() {
            units += i64::from(self.plain_glyph(c)?.1);
        }
        u32::try_from(self.scale(units, i64::from(tier.px))).ok()
    }

    /// How `text` (a name from outside) can be drawn unshaped from the pack: `Some(false)` left
    /// to right, `Some(true)` right to left (Hebrew), `None` when the pack lacks a character or
    /// the text mixes directions (that needs the bidi algorithm; the caller leaves it out).
    pub fn plain_direction(&self, text: &str) -> Option<bool> {
        let hebrew = |c: char| ('\u{0590}'..='\u{05ff}').contains(&c);
        let mut rtl = false;
        let mut ltr = false;
        for c in text.chars() {
            self.plain_glyph(c)?;
            if hebrew(c) {
                rtl = true;
            } else if left_to_right(c) {
                ltr = true;
            }
        }
        match (rtl, ltr) {
            (true, true) => None,
            (rtl, _) => Some(rtl),
        }
    }

    /// Where the ink of `text` drawn by [`Pack::draw_plain`] reaches, in pixels from its pen.
    pub fn plain_ink(&self, tier: &Tier, text: &str) -> (i32, i32) {
        let d = self.bytes();
        let px = i64::from(tier.px);
        let (mut left, mut right, mut pen) = (0, 0, 0i64);
        let rtl = self.plain_direction(text) == Some(true);
        let chars: Vec<char> = if rtl {
            text.chars().rev().collect()
        } else {
            text.chars().collect()
        };
        for c in chars {
            if let Some((glyph, adv)) = self.plain_glyph(c) {
                let b = self.glyph_box(d, tier, glyph);
                let gx = self.scale(pen, px);
                if b.width > 0 {
                    left = left.min(gx + b.left);
                    right = right.max(gx + b.left + b.width as i32);
                }
                pen += i64::from(adv);
                right = right.max(self.scale(pen, px));
            }
        }
        (left, right)
    }

    /// Draws `text` from the character map, top-left at `top_left`: left to right, or reversed
    /// when [`Pack::plain_direction`] says it runs right to left. Characters the pack lacks are
    /// skipped (check first).
    pub fn draw_plain<D>(
        &self,
        tier: &Tier,
        text: &str,
        top_left: Point,
        ink: Ink<D::Color>,
        target: &mut D,
    ) -> Result<(), D::Error>
    where
        D: DrawTarget,
        D::Color: Blend,
    {
        let px = i64::from(tier.px);
        let baseline = top_left + Point::new(0, i32::from(tier.ascent));
        let mut pen = 0i64;
        let mut draw = |c: char, target: &mut D| -> Result<(), D::Error> {
            if let Some((glyph, adv)) = self.plain_glyph(c) {
                let gx = self.scale(pen, px);
                self.draw_glyph(tier, glyph, baseline + Point::new(gx, 0), ink, target)?;
                pen += i64::from(adv);
            }
            Ok(())
        };
        if self.plain_direction(text) == Some(true) {
            for c in text.chars().rev() {
                draw(c, target)?;
            }
        } else {
            for c in text.chars() {
                draw(c, target)?;
            }
        }
        Ok(())
    }
}

/// Whether `c`, a character of a pack's unshaped scripts (Latin, Greek, Cyrillic, Han, kana,
/// Hangul; Hebrew is asked first), is a letter or digit, so it runs left to right: ASCII
/// letters and digits, and from U+00C0 up all but the two signs of Latin-1, the combining
/// marks, the punctuation and symbol blocks and the CJK and fullwidth punctuation. For these
/// scripts it agrees with `char::is_alphanumeric` (a test checks every character of every
/// pack), without core's Unicode tables (about 1.8 KB on armv7).
pub(super) fn left_to_right(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || (c >= '\u{c0}'
            && !matches!(
                c,
                '\u{d7}'
                    | '\u{f7}'
                    | '\u{300}'..='\u{36f}'
                    | '\u{2000}'..='\u{2bff}'
                    | '\u{3000}'..='\u{3004}'
                    | '\u{3008}'..='\u{3020}'
                    | '\u{3036}'..='\u{3037}'
                    | '\u{3030}'
                    | '\u{303d}'..='\u{303f}'
                    | '\u{30a0}'
                    | '\u{30fb}'
                    | '\u{fe30}'..='\u{fe4f}'
                    | '\u{ff00}'..='\u{ff0f}'
                    | '\u{ff1a}'..='\u{ff20}'
                    | '\u{ff3b}'..='\u{ff40}'
                    | '\u{ff5b}'..='\u{ff65}'
            ))
}
