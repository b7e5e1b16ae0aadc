//! Drawing a [`Layout`] on any embedded-graphics [`DrawTarget`]: one code path for the
//! framebuffer, SPI panels, PNG files and the tests.
//!
//! Owns the colours of each [`Role`] in each [`Theme`] (dark, light, high contrast; on
//! monochrome panels lit-on-black, or black-on-lit for the light theme; the QR is always dark
//! modules on a light quiet zone, which scanners need)
//! and painting: fills, QR modules as filled rectangles at the layout's integer scale, text in
//! the u8g2 faces at an integer scale, and the countdown slot. It does not decide positions
//! (`layout/`) nor what changed (`painter.rs`).

use embedded_graphics::pixelcolor::{BinaryColor, Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use u8g2_fonts::types::{FontColor, VerticalPosition};

use super::layout::{Align, Item, Layout, Role, ShapedLine, Text, Theme, Tick, Ticker};
use crate::locale::{Blend, Ink, Pack, Piece};

/// A pixel colour the screens can paint every [`Role`] in, per theme (and blend a locale
/// pack's anti-aliased glyphs in).
pub trait RoleColor: PixelColor + Blend {
    fn of(role: Role, theme: Theme) -> Self;
    /// A monochrome panel's lit (`true`) or unlit pixel in this colour type.
    fn lit(on: bool) -> Self;
}

/// The colours a layout is drawn in: its theme, and whether the picture has two colours only.
/// A monochrome layout drawn on a colour target (the PNG picture of an OLED) gets white for
/// the panel's lit pixels and black for its unlit ones, exactly as [`BinaryColor`] would draw
/// them: one copy of the drawing code for both (about 9 KB on armv7, docs/size.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub theme: Theme,
    pub mono: bool,
}

impl Palette {
    /// The colours of `layout`.
    pub fn of(layout: &Layout) -> Palette {
        Palette {
            theme: layout.theme,
            mono: layout.mono,
        }
    }

    /// The colour of `role`.
    pub fn color<C: RoleColor>(self, role: Role) -> C {
        if self.mono {
            C::lit(BinaryColor::of(role, self.theme) == BinaryColor::On)
        } else {
            C::of(role, self.theme)
        }
    }
}

/// The colour of `role` in `theme`.
pub fn rgb(role: Role, theme: Theme) -> Rgb888 {
    match theme {
        Theme::Dark => dark(role),
        Theme::Light => light(role),
        Theme::HighContrast => high_contrast(role),
    }
}

/// Dark text on white: bright rooms. Every text colour has a contrast of at least 4.5:1
/// (WCAG AA) on the background.
fn light(role: Role) -> Rgb888 {
    match role {
        Role::Background => Rgb888::new(0xf7, 0xf8, 0xfa),
        Role::Text => Rgb888::new(0x11, 0x18, 0x27),
        Role::Muted => Rgb888::new(0x4b, 0x55, 0x63),
        Role::Code => Rgb888::new(0x0b, 0x2a, 0x6f),
        Role::Link => Rgb888::new(0x0b, 0x57, 0xd0),
        Role::QrLight => Rgb888::WHITE,
        Role::QrDark => Rgb888::BLACK,
        Role::BarTrack => Rgb888::new(0xd1, 0xd5, 0xdb),
        Role::BarFill => Rgb888::new(0x25, 0x63, 0xeb),
        Role::Good => Rgb888::new(0x15, 0x6c, 0x36),
        Role::Bad => Rgb888::new(0xb9, 0x1c, 0x1c),
        Role::Warn => Rgb888::new(0x92, 0x40, 0x0e),
    }
}

/// White and yellow on black, nothing muted: the most contrast for viewers with low vision.
fn high_contrast(role: Role) -> Rgb888 {
    match role {
        Role::Background | Role::QrDark => Rgb888::BLACK,
        Role::Text | Role::Muted | Role::Link | Role::QrLight | Role::BarFill => Rgb888::WHITE,
        Role::Code | Role::Warn => Rgb888::new(0xff, 0xff, 0x00),
        Role::BarTrack => Rgb888::new(0x60, 0x60, 0x60),
        Role::Good => Rgb888::new(0x66, 0xff, 0x66),
        Role::Bad => Rgb888::new(0xff, 0x80, 0x80),
    }
}

/// The dark theme: calm on a TV in a dim room, and the QR stands out as the brightest thing.
fn dark(role: Role) -> Rgb888 {
    match role {
        Role::Background => Rgb888::new(0x12, 0x16, 0x1f),
        Role::Text => Rgb888::new(0xf2, 0xf4, 0xf8),
        Role::Muted => Rgb888::new(0xa9, 0xb1, 0xc2),
        Role::Code => Rgb888::new(0xff, 0xd4, 0x5c),
        Role::Link => Rgb888::new(0x8c, 0xc8, 0xff),
        Role::QrLight => Rgb888::WHITE,
        Role::QrDark => Rgb888::BLACK,
        Role::BarTrack => Rgb888::new(0x34, 0x3b, 0x4a),
        Role::BarFill => Rgb888::new(0x4a, 0xa3, 0xff),
        Role::Good => Rgb888::new(0x5a, 0xd1, 0x7a),
        Role::Bad => Rgb888::new(0xff, 0x6b, 0x5a),
        Role::Warn => Rgb888::new(0xff, 0xb8, 0x4a),
    }
}

impl RoleColor for Rgb888 {
    fn of(role: Role, theme: Theme) -> Self {
        rgb(role, theme)
    }
    fn lit(on: bool) -> Self {
        if on { Rgb888::WHITE } else { Rgb888::BLACK }
    }
}

impl RoleColor for Rgb565 {
    fn of(role: Role, theme: Theme) -> Self {
        rgb(role, theme).into()
    }
    fn lit(on: bool) -> Self {
        if on { Rgb565::WHITE } else { Rgb565::BLACK }
    }
}

impl RoleColor for BinaryColor {
    fn lit(on: bool) -> Self {
        if on {
            BinaryColor::On
        } else {
            BinaryColor::Off
        }
    }

    /// Lit text on an unlit panel (the light theme: unlit text on a lit panel); the QR's light
    /// parts lit, its dark modules unlit, whatever the theme.
    fn of(role: Role, theme: Theme) -> Self {
        let lit = match role {
            Role::QrDark => return BinaryColor::Off,
            Role::QrLight => return BinaryColor::On,
            Role::Background | Role::BarTrack => false,
            _ => true,
        };
        if lit != (theme == Theme::Light) {
            BinaryColor::On
        } else {
            BinaryColor::Off
        }
    }
}

/// Draws through an integer zoom: logical pixel (x, y) becomes the `scale`×`scale` square at
/// `origin + (x, y) × scale`. Text faces and whole layouts are scaled this way.
pub struct Scaled<'a, D> {
    pub inner: &'a mut D,
    pub scale: u32,
    pub origin: Point,
}

impl<D: DrawTarget> Dimensions for Scaled<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        let outer = self.inner.bounding_box();
        let s = self.scale.max(1);
        Rectangle::new(
            Point::new(
                (outer.top_left.x - self.origin.x).div_euclid(s as i32),
                (outer.top_left.y - self.origin.y).div_euclid(s as i32),
            ),
            Size::new(outer.size.width / s + 1, outer.size.height / s + 1),
        )
    }
}

impl<D: DrawTarget> DrawTarget for Scaled<'_, D> {
    type Color = D::Color;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let s = self.scale.max(1);
        if s == 1 {
            let o = self.origin;
            return self
                .inner
                .draw_iter(pixels.into_iter().map(|Pixel(p, c)| Pixel(p + o, c)));
        }
        for Pixel(p, c) in pixels {
            let r = Rectangle::new(self.origin + p * s as i32, Size::new(s, s));
            self.inner.fill_solid(&r, c)?;
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let s = self.scale.max(1);
        let r = Rectangle::new(self.origin + area.top_left * s as i32, area.size * s);
        self.inner.fill_solid(&r, color)
    }
}

/// `inner`, clipped to `area` when there is one (as embedded-graphics' `Clipped` does). The
/// countdown slot is drawn clipped, the whole screen is not (what a layout puts off screen
/// stays visible to the tests' guard); both go through this one type, so the text and glyph
/// code is compiled once for the two (about 2 KB on armv7, docs/size.md).
struct Clip<'a, D> {
    inner: &'a mut D,
    area: Option<Rectangle>,
}

impl<D: DrawTarget> Dimensions for Clip<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        self.area.unwrap_or_else(|| self.inner.bounding_box())
    }
}

impl<D: DrawTarget> DrawTarget for Clip<'_, D> {
    type Color = D::Color;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let area = self.area;
        self.inner.draw_iter(
            pixels
                .into_iter()
                .filter(move |Pixel(p, _)| area.is_none_or(|a| a.contains(*p))),
        )
    }

    fn fill_solid(&mut self, r: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        match self.area {
            Some(a) => self.inner.fill_solid(&r.intersection(&a), color),
            None => self.inner.fill_solid(r, color),
        }
    }
}

/// Logical rectangle → target rectangle at `zoom`.
fn zoomed(r: Rectangle, zoom: u32) -> Rectangle {
    Rectangle::new(r.top_left * zoom as i32, r.size * zoom)
}

/// Paints the whole screen: background, items, and the ticker's `tick` (when both exist).
pub fn draw_layout<D>(layout: &Layout, tick: Option<&Tick>, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget,
    D::Color: RoleColor,
{
    let z = layout.zoom.max(1);
    let th = Palette::of(layout);
    let target = &mut Clip {
        inner: target,
        area: None,
    };
    target.fill_solid(
        &zoomed(Rectangle::new(Point::zero(), layout.size), z),
        th.color(Role::Background),
    )?;
    for item in &layout.items {
        match item {
            Item::Fill { rect, role } => target.fill_solid(&zoomed(*rect, z), th.color(*role))?,
            Item::Text(t) => draw_text(t, z, th, target)?,
            Item::Shaped {
                origin,
                shaped,
                role,
            } => {
                if let Some(pack) = layout.language.pack() {
                    draw_shaped(pack, shaped, *origin, *role, z, th, target)?;
                }
            }
            Item::Qr { origin, code } => {
                let side = code.side();
                let full = Rectangle::new(*origin, Size::new(side, side));
                target.fill_solid(&zoomed(full, z), th.color(Role::QrLight))?;
                let s = code.scale;
                let q = code.quiet * s;
                let dark = th.color(Role::QrDark);
                for y in 0..code.modules {
                    // Runs of dark modules in a row become one rectangle: fewer, wider fills.
                    let mut x = 0;
                    while x < code.modules {
                        if !code.is_dark(x, y) {
                            x += 1;
                            continue;
                        }
                        let start = x;
                        while x < code.modules && code.is_dark(x, y) {
                            x += 1;
                        }
                        let r = Rectangle::new(
                            *origin + Point::new((q + start * s) as i32, (q + y * s) as i32),
                            Size::new((x - start) * s, s),
                        );
                        target.fill_solid(&zoomed(r, z), dark)?;
                    }
                }
            }
        }
    }
    if let (Some(slot), Some(tick)) = (&layout.ticker, tick) {
        draw_ticker(slot, tick, z, th, target.inner)?;
    }
    Ok(())
}

/// Draws one line of text. This is where a line's glyphs reach the pixels (the seam for
/// pre-shaped locale packs: a line that is a run of pack glyphs is drawn from its atlas here).
fn draw_text<D>(t: &Text, zoom: u32, theme: Palette, target: &mut D) -> Result<(), D::Error>
where
    D: DrawTarget,
    D::Color: RoleColor,
{
    let mut scaled = Scaled {
        inner: target,
        scale: t.scale * zoom,
        origin: t.origin * zoom as i32,
    };
    let baseline = Point::new(0, t.font.ascent() as i32);
    // Direction marks are zero-width: the faces have no glyph for them.
    let text = super::fonts::visible(&t.text);
    match t.font.renderer().render(
        text.as_ref(),
        baseline,
        VerticalPosition::Baseline,
        FontColor::Transparent(theme.color(t.role)),
        &mut scaled,
    ) {
        Ok(_) => Ok(()),
        Err(u8g2_fonts::Error::DisplayError(e)) => Err(e),
        // Text is made drawable by the layout; a glyph the face lacks is left out.
        Err(_) => Ok(()),
    }
}

/// Draws one line of a locale pack: the pack's runs, then each placeholder's value where the
/// line puts it (in its u8g2 face, or the pack's own letters), all on one baseline.
fn draw_shaped<D>(
    pack: &Pack,
    s: &ShapedLine,
    origin: Point,
    role: Role,
    zoom: u32,
    theme: Palette,
    target: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget,
    D::Color: RoleColor,
{
    let mut scaled = Scaled {
        inner: target,
        scale: s.scale * zoom,
        origin: (origin + Point::new((s.left * s.scale) as i32, 0)) * zoom as i32,
    };
    let ink = Ink {
        fg: theme.color(role),
        bg: theme.color(Role::Background),
        bold: s.bold,
    };
    let ascent = s.ascent as i32;
    // The pack's glyphs hang from the tier's own ascent.
    let top = Point::new(0, ascent - i32::from(s.tier.ascent));
    pack.draw_line(&s.tier, &s.line, top, ink, &mut scaled)?;
    for piece in &s.line.pieces {
        let Piece::Slot { x, name, .. } = piece else {
            continue;
        };
        let Some(v) = s.values.iter().find(|v| &v.slot == name) else {
            continue;
        };
        let x = i32::try_from(*x).unwrap_or(0);
        match v.font {
            None => pack.draw_plain(&s.tier, &v.text, top + Point::new(x, 0), ink, &mut scaled)?,
            Some(face) => {
                let t = Text {
                    origin: Point::new(x, ascent - (face.font.ascent() * face.scale) as i32),
                    text: v.text.clone(),
                    font: face.font,
                    scale: face.scale,
                    role,
                };
                draw_text(&t, 1, theme, &mut scaled)?;
            }
        }
    }
    Ok(())
}

/// Repaints the countdown slot only: clear, text, bar. Nothing outside `slot.rect` is touched.
pub fn draw_ticker<D>(
    slot: &Ticker,
    tick: &Tick,
    zoom: u32,
    theme: Palette,
    target: &mut D,
) -> Result<(), D::Error>
where
    D: DrawTarget,
    D::Color: RoleColor,
{
    let z = zoom.max(1);
    let of = |r| theme.color::<D::Color>(r);
    target.fill_solid(&zoomed(slot.rect, z), of(Role::Background))?;
    let w = match &tick.shaped {
        Some(s) => s.size().width,
        None => slot.font.width(&tick.text) * slot.scale,
    };
    let free = slot.rect.size.width.saturating_sub(w) as i32;
    let x = slot.rect.top_left.x
        + match slot.align {
            Align::Left => 0,
            Align::Center => free / 2,
            Align::Right => free,
        };
    // Keep the text inside the slot even if a caller passes a longer one.
    let area = zoomed(slot.rect, z).intersection(&target.bounding_box());
    let mut clipped = Clip {
        inner: target,
        area: Some(area),
    };
    match (&tick.shaped, slot.language.pack()) {
        (Some(s), Some(pack)) => {
            let origin = Point::new(x, slot.text_y);
            draw_shaped(pack, s, origin, tick.role, z, theme, &mut clipped)?;
        }
        _ => {
            let text = Text {
                origin: Point::new(x, slot.text_y),
                text: tick.text.clone(),
                font: slot.font,
                scale: slot.scale,
                role: tick.role,
            };
            draw_text(&text, z, theme, &mut clipped)?;
        }
    }
    if let Some(bar) = slot.bar {
        clipped.fill_solid(&zoomed(bar, z), of(Role::BarTrack))?;
        let filled = bar.size.width * tick.permille.min(1000) / 1000;
        if filled > 0 {
            // Right to left, the bar fills from the right.
            let from = if slot.rtl {
                bar.top_left.x + (bar.size.width - filled) as i32
            } else {
                bar.top_left.x
            };
            let r = Rectangle::new(
                Point::new(from, bar.top_left.y),
                Size::new(filled, bar.size.height),
            );
            clipped.fill_solid(&zoomed(r, z), of(Role::BarFill))?;
        }
        if !of(Role::BarTrack).eq(&of(Role::Background)) {
            return Ok(());
        }
        // Monochrome: the track is invisible, so outline it.
        let on = of(Role::BarFill);
        let b = zoomed(bar, z);
        let (x0, y0) = (b.top_left.x, b.top_left.y);
        let (w, h) = (b.size.width, b.size.height);
        for r in [
            Rectangle::new(Point::new(x0, y0), Size::new(w, 1)),
            Rectangle::new(Point::new(x0, y0 + h as i32 - 1), Size::new(w, 1)),
            Rectangle::new(Point::new(x0, y0), Size::new(1, h)),
            Rectangle::new(Point::new(x0 + w as i32 - 1, y0), Size::new(1, h)),
        ] {
            clipped.fill_solid(&r, on)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG relative luminance and contrast ratio.
    fn contrast(a: Rgb888, b: Rgb888) -> f64 {
        let lum = |c: Rgb888| {
            let lin = |v: u8| {
                let v = f64::from(v) / 255.0;
                if v <= 0.03928 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * lin(c.r()) + 0.7152 * lin(c.g()) + 0.0722 * lin(c.b())
        };
        let (x, y) = (lum(a), lum(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    #[test]
    fn every_theme_keeps_text_readable_and_the_qr_dark_on_light() {
        for theme in Theme::ALL {
            let bg = rgb(Role::Background, theme);
            let least = match theme {
                Theme::HighContrast => 7.0,
                _ => 4.5,
            };
            for role in [
                Role::Text,
                Role::Muted,
                Role::Code,
                Role::Link,
                Role::Good,
                Role::Bad,
                Role::Warn,
            ] {
                let c = contrast(rgb(role, theme), bg);
                assert!(c >= least, "{theme:?} {role:?}: {c:.2}");
            }
            assert_eq!(rgb(Role::QrDark, theme), Rgb888::BLACK);
            assert_eq!(rgb(Role::QrLight, theme), Rgb888::WHITE);
        }
        assert!(
            contrast(rgb(Role::Text, Theme::Light), Rgb888::BLACK) < 2.0,
            "light is dark text"
        );
        // A monochrome panel: lit text on unlit, or the other way round in the light theme;
        // the QR the same in both.
        assert_eq!(BinaryColor::of(Role::Text, Theme::Dark), BinaryColor::On);
        assert_eq!(
            BinaryColor::of(Role::Background, Theme::Dark),
            BinaryColor::Off
        );
        assert_eq!(BinaryColor::of(Role::Text, Theme::Light), BinaryColor::Off);
        assert_eq!(
            BinaryColor::of(Role::Background, Theme::Light),
            BinaryColor::On
        );
        for theme in Theme::ALL {
            assert_eq!(BinaryColor::of(Role::QrDark, theme), BinaryColor::Off);
            assert_eq!(BinaryColor::of(Role::QrLight, theme), BinaryColor::On);
        }
    }
}
