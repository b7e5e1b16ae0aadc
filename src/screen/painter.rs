//! Deciding how much to repaint: the whole screen when the layout changes (new state, new code,
//! OLED page flip), only the countdown slot when just the time moved, nothing when neither did.
//!
//! Owns the cached [`Layout`] (the QR is encoded once per code, not per tick) and the last
//! [`Tick`]. Every pixel backend holds one `Painter` and one shadow canvas; the backend then
//! pushes the canvas's dirty region to its device.

use embedded_graphics::prelude::{DrawTarget, Size};

use super::draw::{self, RoleColor};
use super::layout::{self, Layout, Profile, Tick};
use super::{Screen, View};
use crate::screen::error::DisplayError;

/// What a [`Painter::paint`] call changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Painted {
    Nothing,
    /// Only the countdown slot.
    Ticker,
    Full,
}

#[derive(Debug)]
pub struct Painter {
    size: Size,
    profile: Profile,
    key: Option<(View, u8)>,
    layout: Option<Layout>,
    tick: Option<Tick>,
}

impl Painter {
    /// A painter for a screen the viewer sees as `size` (after rotation).
    pub fn new(size: Size, profile: Profile) -> Painter {
        Painter {
            size,
            profile,
            key: None,
            layout: None,
            tick: None,
        }
    }

    /// The layout on screen, if any.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    /// Forgets what is on screen, so the next paint is a full one.
    pub fn invalidate(&mut self) {
        self.key = None;
    }

    pub fn paint<D>(&mut self, view: &View, target: &mut D) -> Result<Painted, D::Error>
    where
        D: DrawTarget,
        D::Color: RoleColor,
    {
        let key = layout::static_key(view, self.size, &self.profile);
        if self.key.as_ref() != Some(&key) {
            let l = layout::layout(view, self.size, &self.profile);
            let tick = l.ticker.as_ref().and_then(|slot| layout::tick(view, slot));
            draw::draw_layout(&l, tick.as_ref(), target)?;
            self.layout = Some(l);
            self.tick = tick;
            self.key = Some(key);
            return Ok(Painted::Full);
        }
        let Some(l) = &self.layout else {
            return Ok(Painted::Nothing);
        };
        let Some(slot) = &l.ticker else {
            return Ok(Painted::Nothing);
        };
        let tick = layout::tick(view, slot);
        if tick == self.tick {
            return Ok(Painted::Nothing);
        }
        if let Some(t) = &tick {
            draw::draw_ticker(slot, t, l.zoom, target)?;
        }
        self.tick = tick;
        Ok(Painted::Ticker)
    }
}

/// A shadow canvas that can be wiped (see [`super::canvas::Canvas::clear`]).
pub trait Clearable {
    fn wipe(&mut self);
}

impl Clearable for super::canvas::Canvas {
    fn wipe(&mut self) {
        self.clear_all()
    }
}

impl Clearable for super::canvas::MonoCanvas {
    fn wipe(&mut self) {
        self.clear_all()
    }
}

/// A display driven through a [`Painter`] and a shadow canvas in the device's own layout: the
/// backend only says how to push the canvas's changed region to the hardware, and gets its
/// [`Screen`] implementation (paint, push only what changed, blank on release) from here.
pub trait PixelDevice {
    type Canvas: DrawTarget<Error = core::convert::Infallible, Color: RoleColor> + Clearable;

    fn painter_and_canvas(&mut self) -> (&mut Painter, &mut Self::Canvas);

    /// Sends the canvas's dirty region to the device.
    fn push(&mut self) -> Result<(), DisplayError>;
}

impl<T: PixelDevice> Screen for T {
    fn show(&mut self, view: &View) -> Result<(), DisplayError> {
        let (painter, canvas) = self.painter_and_canvas();
        let Ok(painted) = painter.paint(view, canvas);
        if painted == Painted::Nothing {
            return Ok(());
        }
        self.push()
    }

    fn release(&mut self, blank: bool) -> Result<(), DisplayError> {
        if !blank {
            return Ok(());
        }
        let (painter, canvas) = self.painter_and_canvas();
        canvas.wipe();
        // Whatever is shown next must be drawn in full over the cleared canvas.
        painter.invalidate();
        self.push()
    }
}
