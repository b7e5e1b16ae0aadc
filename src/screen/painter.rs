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
            for what in &l.omitted {
                eprintln!(
                    "devauth: screen: the {what} has letters this screen's faces lack; left out"
                );
            }
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
            draw::draw_ticker(slot, t, l.zoom, draw::Palette::of(l), target)?;
        }
        self.tick = tick;
        Ok(Painted::Ticker)
    }
}

/// A shadow canvas that can be wiped (see [`super::canvas::Canvas::clear`]).
pub trait Clearable {
    fn wipe(&mut self);
    /// Marks the whole canvas changed, so the next push sends all of it.
    fn mark_all(&mut self);
}

impl Clearable for super::canvas::Canvas {
    fn wipe(&mut self) {
        self.clear_all()
    }
    fn mark_all(&mut self) {
        self.mark_all_dirty()
    }
}

impl Clearable for super::canvas::MonoCanvas {
    fn wipe(&mut self) {
        self.clear_all()
    }
    fn mark_all(&mut self) {
        self.mark_all_dirty()
    }
}

/// Whether the device shows devauth's picture now (see [`PixelDevice::prepare`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// As at the last push: send what changed.
    Same,
    /// Something else is on the device (another VT): send nothing now.
    Hidden,
    /// What was on the device is gone (a VT switch back): send everything.
    Lost,
}

/// A display driven through a [`Painter`] and a shadow canvas in the device's own layout: the
/// backend only says how to push the canvas's changed region to the hardware, and gets its
/// [`Screen`] implementation (paint, push only what changed, blank on release) from here.
pub trait PixelDevice {
    type Canvas: DrawTarget<Error = core::convert::Infallible, Color: RoleColor> + Clearable;

    fn painter_and_canvas(&mut self) -> (&mut Painter, &mut Self::Canvas);

    /// Sends the canvas's dirty region to the device.
    fn push(&mut self) -> Result<(), DisplayError>;

    /// Asked before each paint; devices that share the screen with the console say whether
    /// devauth's picture is still there.
    fn prepare(&mut self) -> Result<Shown, DisplayError> {
        Ok(Shown::Same)
    }

    /// Called at the end of [`Screen::release`]: gives the device back (console mode, DRM
    /// master; with `blank`, DRM's output as it was before). The next `show` takes it again.
    fn hand_back(&mut self, blank: bool) -> Result<(), DisplayError> {
        let _ = blank;
        Ok(())
    }
}

impl<T: PixelDevice> Screen for T {
    fn show(&mut self, view: &View) -> Result<(), DisplayError> {
        match self.prepare()? {
            Shown::Same => {}
            Shown::Hidden => return Ok(()),
            Shown::Lost => {
                let (painter, canvas) = self.painter_and_canvas();
                painter.invalidate();
                canvas.mark_all();
            }
        }
        let (painter, canvas) = self.painter_and_canvas();
        let Ok(painted) = painter.paint(view, canvas);
        if painted == Painted::Nothing {
            return Ok(());
        }
        self.push()
    }

    fn release(&mut self, blank: bool) -> Result<(), DisplayError> {
        if blank {
            let (painter, canvas) = self.painter_and_canvas();
            canvas.wipe();
            // Whatever is shown next must be drawn in full over the cleared canvas.
            painter.invalidate();
            // Handed back even when the last push failed.
            let pushed = self.push();
            self.hand_back(true)?;
            return pushed;
        }
        self.hand_back(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::canvas::{Canvas, PixelFormat, Rotation};
    use embedded_graphics::prelude::Point;
    use embedded_graphics::primitives::Rectangle;

    /// A device whose `prepare` answer the test sets, recording each push's rectangle.
    struct Dev {
        painter: Painter,
        canvas: Canvas,
        next: Shown,
        pushed: Vec<Option<Rectangle>>,
        handed_back: u32,
    }

    impl PixelDevice for Dev {
        type Canvas = Canvas;
        fn painter_and_canvas(&mut self) -> (&mut Painter, &mut Canvas) {
            (&mut self.painter, &mut self.canvas)
        }
        fn push(&mut self) -> Result<(), DisplayError> {
            self.pushed.push(self.canvas.take_dirty());
            Ok(())
        }
        fn prepare(&mut self) -> Result<Shown, DisplayError> {
            Ok(self.next)
        }
        fn hand_back(&mut self, _blank: bool) -> Result<(), DisplayError> {
            self.handed_back += 1;
            Ok(())
        }
    }

    #[test]
    fn hidden_draws_nothing_lost_draws_everything_release_hands_back() {
        let size = Size::new(320, 240);
        let mut d = Dev {
            painter: Painter::new(size, Profile::default()),
            canvas: Canvas::new(size, 320 * 4, PixelFormat::XRGB8888, Rotation::R0),
            next: Shown::Same,
            pushed: Vec::new(),
            handed_back: 0,
        };
        let whole = Some(Rectangle::new(Point::zero(), size));
        let paired = View::Paired {
            account: None,
            name: None,
        };
        d.show(&paired).unwrap();
        assert_eq!(d.pushed.len(), 1);
        d.show(&paired).unwrap();
        assert_eq!(d.pushed.len(), 1, "nothing changed, nothing pushed");

        // Another VT is on screen: even a new view is not drawn.
        d.next = Shown::Hidden;
        d.show(&View::Denied).unwrap();
        assert_eq!(d.pushed.len(), 1);

        // Back: the same view as before the switch is pushed whole.
        d.next = Shown::Lost;
        d.show(&paired).unwrap();
        assert_eq!(d.pushed.last(), Some(&whole));

        d.next = Shown::Same;
        d.release(false).unwrap();
        assert_eq!((d.pushed.len(), d.handed_back), (2, 1));
        d.release(true).unwrap();
        assert_eq!((d.pushed.len(), d.handed_back), (3, 2));
        assert_eq!(d.pushed.last(), Some(&whole));
    }
}
