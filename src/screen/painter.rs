//! Deciding how much to repaint: the whole screen when the layout changes (new state, new code,
//! OLED page flip), only the countdown slot when just the time moved, nothing when neither did.
//!
//! Owns the cached [`Layout`] (the QR is encoded once per code, not per tick) and the last
//! [`Tick`]. Every pixel backend holds one `Painter` and one shadow canvas; the backend then
//! pushes the canvas's dirty region to its device.

use embedded_graphics::prelude::{DrawTarget, Size};

use super::View;
use super::draw::{self, RoleColor};
use super::layout::{self, Layout, Profile, Tick};

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
