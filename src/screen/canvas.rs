//! Shadow buffers in the hardware's own pixel layout, as embedded-graphics draw targets: every
//! pixel backend draws here first, then pushes only what changed.
//!
//! Owns pixel formats (RGB565 … ABGR8888, described by bitfields as fbdev does), rotation
//! (0/90/180/270, done here so all backends rotate the same way) and dirty tracking (the
//! bounding box of everything written since the last [`Canvas::take_dirty`]). It never reads
//! device memory: backends copy out of `bytes()`.

use embedded_graphics::pixelcolor::{BinaryColor, Rgb888};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

/// Quarter turns, clockwise: what the viewer sees is the panel turned by this much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    R0,
    R90,
    R180,
    R270,
}

impl Rotation {
    pub fn from_degrees(deg: u32) -> Option<Rotation> {
        match deg {
            0 => Some(Rotation::R0),
            90 => Some(Rotation::R90),
            180 => Some(Rotation::R180),
            270 => Some(Rotation::R270),
            _ => None,
        }
    }

    pub fn degrees(self) -> u32 {
        match self {
            Rotation::R0 => 0,
            Rotation::R90 => 90,
            Rotation::R180 => 180,
            Rotation::R270 => 270,
        }
    }

    /// The size the viewer sees for a panel of `physical` size.
    pub fn logical(self, physical: Size) -> Size {
        match self {
            Rotation::R0 | Rotation::R180 => physical,
            Rotation::R90 | Rotation::R270 => Size::new(physical.height, physical.width),
        }
    }

    /// Maps a logical rectangle (already clipped to the logical screen) to panel coordinates.
    fn map_rect(self, r: Rectangle, physical: Size) -> Rectangle {
        let (x, y) = (r.top_left.x, r.top_left.y);
        let (w, h) = (r.size.width as i32, r.size.height as i32);
        let (pw, ph) = (physical.width as i32, physical.height as i32);
        match self {
            Rotation::R0 => r,
            Rotation::R180 => Rectangle::new(Point::new(pw - x - w, ph - y - h), r.size),
            Rotation::R90 => Rectangle::new(
                Point::new(pw - y - h, x),
                Size::new(r.size.height, r.size.width),
            ),
            Rotation::R270 => Rectangle::new(
                Point::new(y, ph - x - w),
                Size::new(r.size.height, r.size.width),
            ),
        }
    }

    fn map_point(self, p: Point, physical: Size) -> Point {
        let (pw, ph) = (physical.width as i32, physical.height as i32);
        match self {
            Rotation::R0 => p,
            Rotation::R180 => Point::new(pw - 1 - p.x, ph - 1 - p.y),
            Rotation::R90 => Point::new(pw - 1 - p.y, p.x),
            Rotation::R270 => Point::new(p.y, ph - 1 - p.x),
        }
    }
}

/// One colour channel's place in a pixel word: `length` bits from bit `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: u8,
    pub length: u8,
}

/// A packed pixel format: little-endian words of `bytes` bytes with these channel fields; the
/// alpha field (when present) is always written opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    pub bytes: u8,
    pub red: Field,
    pub green: Field,
    pub blue: Field,
    pub alpha: Option<Field>,
}

const fn f(offset: u8, length: u8) -> Field {
    Field { offset, length }
}

impl PixelFormat {
    pub const RGB565: PixelFormat = PixelFormat {
        bytes: 2,
        red: f(11, 5),
        green: f(5, 6),
        blue: f(0, 5),
        alpha: None,
    };
    pub const BGR565: PixelFormat = PixelFormat {
        bytes: 2,
        red: f(0, 5),
        green: f(5, 6),
        blue: f(11, 5),
        alpha: None,
    };
    /// fbdev's 24-bit RGB (red at bit 16): bytes B, G, R in memory.
    pub const RGB888: PixelFormat = PixelFormat {
        bytes: 3,
        red: f(16, 8),
        green: f(8, 8),
        blue: f(0, 8),
        alpha: None,
    };
    /// Bytes R, G, B in memory.
    pub const BGR888: PixelFormat = PixelFormat {
        bytes: 3,
        red: f(0, 8),
        green: f(8, 8),
        blue: f(16, 8),
        alpha: None,
    };
    /// Bytes B, G, R, X.
    pub const XRGB8888: PixelFormat = PixelFormat {
        bytes: 4,
        red: f(16, 8),
        green: f(8, 8),
        blue: f(0, 8),
        alpha: None,
    };
    /// Bytes B, G, R, A (A written 0xff).
    pub const ARGB8888: PixelFormat = PixelFormat {
        bytes: 4,
        red: f(16, 8),
        green: f(8, 8),
        blue: f(0, 8),
        alpha: Some(f(24, 8)),
    };
    /// Bytes R, G, B, A (A written 0xff).
    pub const ABGR8888: PixelFormat = PixelFormat {
        bytes: 4,
        red: f(0, 8),
        green: f(8, 8),
        blue: f(16, 8),
        alpha: Some(f(24, 8)),
    };
    /// Bytes R, G, B, X.
    pub const XBGR8888: PixelFormat = PixelFormat {
        bytes: 4,
        red: f(0, 8),
        green: f(8, 8),
        blue: f(16, 8),
        alpha: None,
    };

    /// Names accepted in the config (`[display] format`).
    pub const NAMED: [(&'static str, PixelFormat); 8] = [
        ("rgb565", PixelFormat::RGB565),
        ("bgr565", PixelFormat::BGR565),
        ("rgb888", PixelFormat::RGB888),
        ("bgr888", PixelFormat::BGR888),
        ("xrgb8888", PixelFormat::XRGB8888),
        ("argb8888", PixelFormat::ARGB8888),
        ("abgr8888", PixelFormat::ABGR8888),
        ("xbgr8888", PixelFormat::XBGR8888),
    ];

    pub fn by_name(name: &str) -> Option<PixelFormat> {
        Self::NAMED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }

    pub fn name(&self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(_, f)| f == self).map(|(n, _)| *n)
    }

    /// A format from fbdev's description, if it is one devauth can write (16, 24 or 32 bpp with
    /// channels of at most 8 bits inside the word).
    pub fn from_bitfields(
        bits_per_pixel: u32,
        red: Field,
        green: Field,
        blue: Field,
        alpha: Field,
    ) -> Option<PixelFormat> {
        let bytes = match bits_per_pixel {
            16 => 2,
            24 => 3,
            32 => 4,
            _ => return None,
        };
        let ok = |c: Field| {
            c.length >= 1
                && c.length <= 8
                && u32::from(c.offset) + u32::from(c.length) <= bits_per_pixel
        };
        if !(ok(red) && ok(green) && ok(blue)) {
            return None;
        }
        let alpha = (alpha.length > 0).then_some(alpha).filter(|a| ok(*a));
        Some(PixelFormat {
            bytes,
            red,
            green,
            blue,
            alpha,
        })
    }

    /// The pixel word for `c`.
    pub fn encode(&self, c: Rgb888) -> u32 {
        let ch = |v: u8, f: Field| (u32::from(v) >> (8 - f.length.min(8))) << f.offset;
        let mut word = ch(c.r(), self.red) | ch(c.g(), self.green) | ch(c.b(), self.blue);
        if let Some(a) = self.alpha {
            word |= ((1u32 << a.length.min(31)) - 1) << a.offset;
        }
        word
    }

    /// The colour of a pixel word (channels widened to 8 bits), for tests and PNG output.
    pub fn decode(&self, word: u32) -> Rgb888 {
        let ch = |f: Field| {
            let len = u32::from(f.length.clamp(1, 8));
            let v = (word >> f.offset) & ((1u32 << len) - 1);
            // Widen by repeating the top bits (31 → 255, not 248).
            let v8 = if len == 1 {
                v * 255
            } else {
                (v << (8 - len)) | (v >> (2 * len).saturating_sub(8).min(len))
            };
            u8::try_from(v8.min(255)).unwrap_or(255)
        };
        Rgb888::new(ch(self.red), ch(self.green), ch(self.blue))
    }
}

/// The smallest rectangle holding `r` and, when there is one, `d`.
fn bounding_box(d: Option<Rectangle>, r: Rectangle) -> Rectangle {
    let Some(d) = d else {
        return r;
    };
    let x0 = d.top_left.x.min(r.top_left.x);
    let y0 = d.top_left.y.min(r.top_left.y);
    let x1 = (d.top_left.x + d.size.width as i32).max(r.top_left.x + r.size.width as i32);
    let y1 = (d.top_left.y + d.size.height as i32).max(r.top_left.y + r.size.height as i32);
    Rectangle::new(
        Point::new(x0, y0),
        Size::new((x1 - x0) as u32, (y1 - y0) as u32),
    )
}

/// What both canvases share: the panel size, how the viewer's (logical) coordinates map onto it,
/// and the damage since the last flush, in panel coordinates.
#[derive(Debug, Clone)]
struct Frame {
    physical: Size,
    logical: Size,
    rotation: Rotation,
    dirty: Option<Rectangle>,
}

impl Frame {
    fn new(physical: Size, rotation: Rotation) -> Frame {
        Frame {
            physical,
            logical: rotation.logical(physical),
            rotation,
            dirty: None,
        }
    }

    /// The panel point of a logical pixel, `None` when it is off screen; counts it as damage.
    fn touch_point(&mut self, p: Point) -> Option<Point> {
        let (lw, lh) = (self.logical.width as i32, self.logical.height as i32);
        if p.x < 0 || p.y < 0 || p.x >= lw || p.y >= lh {
            return None;
        }
        let q = self.rotation.map_point(p, self.physical);
        self.grow_dirty(Rectangle::new(q, Size::new(1, 1)));
        Some(q)
    }

    /// The panel rectangle of a logical area clipped to the screen, `None` when nothing of it
    /// is on screen; counts it as damage.
    fn touch_rect(&mut self, area: &Rectangle) -> Option<Rectangle> {
        let r = area.intersection(&Rectangle::new(Point::zero(), self.logical));
        if r.is_zero_sized() {
            return None;
        }
        let p = self.rotation.map_rect(r, self.physical);
        self.grow_dirty(p);
        Some(p)
    }

    fn grow_dirty(&mut self, r: Rectangle) {
        self.dirty = Some(bounding_box(self.dirty, r));
    }

    fn take_dirty(&mut self) -> Option<Rectangle> {
        self.dirty.take()
    }

    fn mark_all_dirty(&mut self) {
        self.dirty = Some(Rectangle::new(Point::zero(), self.physical));
    }
}

/// A shadow buffer of a colour panel in its own pixel format and row stride.
#[derive(Debug, Clone)]
pub struct Canvas {
    frame: Frame,
    stride: usize,
    format: PixelFormat,
    buf: Vec<u8>,
}

impl Canvas {
    /// A cleared (all-zero) canvas; `stride` in bytes, at least `width × bytes per pixel`.
    pub fn new(physical: Size, stride: usize, format: PixelFormat, rotation: Rotation) -> Canvas {
        let min = physical.width as usize * usize::from(format.bytes);
        let stride = stride.max(min);
        Canvas {
            frame: Frame::new(physical, rotation),
            stride,
            format,
            buf: vec![0; stride * physical.height as usize],
        }
    }

    /// The panel's size (before rotation).
    pub fn physical_size(&self) -> Size {
        self.frame.physical
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The whole buffer: rows of `stride` bytes, in the panel's orientation.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The panel-coordinate bounding box of everything written since the last call.
    pub fn take_dirty(&mut self) -> Option<Rectangle> {
        self.frame.take_dirty()
    }

    /// Marks the whole panel as changed (e.g. after (re)opening the device).
    pub fn mark_all_dirty(&mut self) {
        self.frame.mark_all_dirty();
    }

    /// Zeroes every pixel: black, and fully transparent in formats with alpha — on a set-top
    /// box's OSD layer that uncovers the video below, which is what handing the display back
    /// means there.
    pub fn clear_all(&mut self) {
        self.buf.fill(0);
        self.mark_all_dirty();
    }

    /// The colour at a panel coordinate.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb888> {
        if x >= self.frame.physical.width || y >= self.frame.physical.height {
            return None;
        }
        let bpp = usize::from(self.format.bytes);
        let at = y as usize * self.stride + x as usize * bpp;
        let bytes = self.buf.get(at..at + bpp)?;
        let mut word = [0u8; 4];
        word.get_mut(..bpp)?.copy_from_slice(bytes);
        Some(self.format.decode(u32::from_le_bytes(word)))
    }

    /// Fills a panel-coordinate rectangle already inside the panel.
    fn fill_physical(&mut self, r: Rectangle, color: Rgb888) {
        let bpp = usize::from(self.format.bytes);
        let word = self.format.encode(color).to_le_bytes();
        let Some(px) = word.get(..bpp) else { return };
        let x0 = r.top_left.x.max(0) as usize;
        let y0 = r.top_left.y.max(0) as usize;
        let w = r.size.width as usize;
        let h = r.size.height as usize;
        // One row pattern, copied into each row.
        let mut row = Vec::with_capacity(w * bpp);
        for _ in 0..w {
            row.extend_from_slice(px);
        }
        for y in y0..y0 + h {
            let at = y * self.stride + x0 * bpp;
            if let Some(dst) = self.buf.get_mut(at..at + row.len()) {
                dst.copy_from_slice(&row);
            }
        }
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        self.frame.logical
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let bpp = usize::from(self.format.bytes);
        for Pixel(p, c) in pixels {
            let Some(q) = self.frame.touch_point(p) else {
                continue;
            };
            let at = q.y as usize * self.stride + q.x as usize * bpp;
            let word = self.format.encode(c).to_le_bytes();
            if let (Some(dst), Some(src)) = (self.buf.get_mut(at..at + bpp), word.get(..bpp)) {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        if let Some(p) = self.frame.touch_rect(area) {
            self.fill_physical(p, color);
        }
        Ok(())
    }
}

/// A shadow buffer of a 1-bit panel in SSD1306 page layout: each byte is 8 vertical pixels
/// (LSB on top), pages of `width` bytes from top to bottom.
#[derive(Debug, Clone)]
pub struct MonoCanvas {
    frame: Frame,
    buf: Vec<u8>,
}

impl MonoCanvas {
    pub fn new(physical: Size, rotation: Rotation) -> MonoCanvas {
        let pages = physical.height.div_ceil(8) as usize;
        MonoCanvas {
            frame: Frame::new(physical, rotation),
            buf: vec![0; pages * physical.width as usize],
        }
    }

    pub fn physical_size(&self) -> Size {
        self.frame.physical
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn take_dirty(&mut self) -> Option<Rectangle> {
        self.frame.take_dirty()
    }

    pub fn mark_all_dirty(&mut self) {
        self.frame.mark_all_dirty();
    }

    /// Turns every pixel off.
    pub fn clear_all(&mut self) {
        self.buf.fill(0);
        self.mark_all_dirty();
    }

    /// Whether the pixel at a panel coordinate is lit.
    pub fn lit(&self, x: u32, y: u32) -> bool {
        if x >= self.frame.physical.width || y >= self.frame.physical.height {
            return false;
        }
        let i = (y / 8) as usize * self.frame.physical.width as usize + x as usize;
        self.buf.get(i).is_some_and(|b| b & (1 << (y % 8)) != 0)
    }

    fn set(&mut self, q: Point, on: bool) {
        let (x, y) = (q.x as usize, q.y as usize);
        let i = (y / 8) * self.frame.physical.width as usize + x;
        if let Some(b) = self.buf.get_mut(i) {
            if on {
                *b |= 1 << (y % 8);
            } else {
                *b &= !(1 << (y % 8));
            }
        }
    }
}

impl OriginDimensions for MonoCanvas {
    fn size(&self) -> Size {
        self.frame.logical
    }
}

impl DrawTarget for MonoCanvas {
    type Color = BinaryColor;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, c) in pixels {
            if let Some(q) = self.frame.touch_point(p) {
                self.set(q, c.is_on());
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let Some(p) = self.frame.touch_rect(area) else {
            return Ok(());
        };
        for y in p.rows() {
            for x in p.columns() {
                self.set(Point::new(x, y), color.is_on());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_encode_to_the_documented_bytes() {
        let c = Rgb888::new(0x12, 0x34, 0x56);
        let bytes = |f: PixelFormat| f.encode(c).to_le_bytes()[..usize::from(f.bytes)].to_vec();
        assert_eq!(bytes(PixelFormat::XRGB8888), [0x56, 0x34, 0x12, 0x00]);
        assert_eq!(bytes(PixelFormat::ARGB8888), [0x56, 0x34, 0x12, 0xff]);
        assert_eq!(bytes(PixelFormat::ABGR8888), [0x12, 0x34, 0x56, 0xff]);
        assert_eq!(bytes(PixelFormat::XBGR8888), [0x12, 0x34, 0x56, 0x00]);
        assert_eq!(bytes(PixelFormat::RGB888), [0x56, 0x34, 0x12]);
        assert_eq!(bytes(PixelFormat::BGR888), [0x12, 0x34, 0x56]);
        // 565: r=0x12>>3=2, g=0x34>>2=13, b=0x56>>3=10.
        let rgb565 = (2u16 << 11) | (13 << 5) | 10;
        let bgr565 = (10u16 << 11) | (13 << 5) | 2;
        assert_eq!(bytes(PixelFormat::RGB565), rgb565.to_le_bytes());
        assert_eq!(bytes(PixelFormat::BGR565), bgr565.to_le_bytes());
        for (_, f) in PixelFormat::NAMED {
            assert_eq!(f.decode(f.encode(Rgb888::WHITE)), Rgb888::WHITE);
            assert_eq!(f.decode(f.encode(Rgb888::BLACK)), Rgb888::BLACK);
        }
    }

    #[test]
    fn bitfields_name_the_known_formats() {
        let fmt = PixelFormat::from_bitfields(32, f(16, 8), f(8, 8), f(0, 8), f(24, 8));
        assert_eq!(fmt, Some(PixelFormat::ARGB8888));
        let fmt = PixelFormat::from_bitfields(16, f(11, 5), f(5, 6), f(0, 5), f(0, 0));
        assert_eq!(fmt, Some(PixelFormat::RGB565));
        assert_eq!(
            PixelFormat::from_bitfields(1, f(0, 1), f(0, 1), f(0, 1), f(0, 0)),
            None
        );
        assert_eq!(
            PixelFormat::from_bitfields(16, f(12, 8), f(5, 6), f(0, 5), f(0, 0)),
            None
        );
    }

    #[test]
    fn rotation_maps_rects_and_points_alike() {
        let phys = Size::new(7, 4);
        for rot in [Rotation::R0, Rotation::R90, Rotation::R180, Rotation::R270] {
            let logical = rot.logical(phys);
            let r = Rectangle::new(Point::new(1, 2), Size::new(2, 1));
            assert!(r.bottom_right().unwrap().x < logical.width as i32);
            let mapped = rot.map_rect(r, phys);
            for p in r.points() {
                assert!(mapped.contains(rot.map_point(p, phys)), "{rot:?} {p:?}");
            }
            assert_eq!(mapped.size.width * mapped.size.height, 2);
        }
    }

    #[test]
    fn stride_padding_is_never_written_and_dirty_tracks_writes() {
        let mut c = Canvas::new(Size::new(3, 2), 16, PixelFormat::RGB565, Rotation::R0);
        c.fill_solid(
            &Rectangle::new(Point::zero(), Size::new(10, 10)),
            Rgb888::WHITE,
        )
        .unwrap();
        for row in c.bytes().chunks(16) {
            assert!(row[..6].iter().all(|b| *b == 0xff));
            assert!(row[6..].iter().all(|b| *b == 0));
        }
        assert_eq!(
            c.take_dirty(),
            Some(Rectangle::new(Point::zero(), Size::new(3, 2)))
        );
        assert_eq!(c.take_dirty(), None);
        c.draw_iter([Pixel(Point::new(2, 1), Rgb888::BLACK)])
            .unwrap();
        assert_eq!(
            c.take_dirty(),
            Some(Rectangle::new(Point::new(2, 1), Size::new(1, 1)))
        );
        assert_eq!(c.pixel(2, 1), Some(Rgb888::BLACK));
    }

    #[test]
    fn mono_pages() {
        let mut m = MonoCanvas::new(Size::new(4, 16), Rotation::R0);
        m.draw_iter([Pixel(Point::new(1, 9), BinaryColor::On)])
            .unwrap();
        assert_eq!(m.bytes()[4 + 1], 0b10);
        assert!(m.lit(1, 9));
        assert!(!m.lit(1, 8));
    }
}
