//! The `drm` backend: Linux DRM/KMS (`/dev/dri/card0`) for kernels without fbdev emulation.
//!
//! One dumb buffer (XRGB8888, the format every KMS driver scans out) on the first connected
//! output at its preferred mode, or the mode of `[display] width` × `height` (`choose.rs`);
//! drawn with the same shadow canvas, painter and layout as the framebuffer, only the changed
//! rectangle copied and then reported with DIRTYFB (drivers that scan the buffer out directly
//! answer ENOSYS, which is fine). devauth stays DRM master while it shows the screen; on a
//! blanking [`Screen::release`](crate::screen::Screen::release) and on drop the CRTC gets back
//! what it showed before (saved with GETCRTC), on every release the master is dropped (a
//! "keep" release leaves the last picture on the output for the device's UI to replace), and on
//! drop the framebuffer and the buffer are freed. The VT is held in graphics mode as for fbdev (`screen::console`).
//!
//! Raw ioctls through libc (`ioctl.rs`), like fbdev.rs: eight calls did not justify the `drm`
//! crate and its dependency tree (rustix, drm-ffi, drm-fourcc, bytemuck).
//!
//! Not done: page flipping (one buffer: a tick repaints a few rows), atomic modesetting, planes,
//! choosing among several connected outputs (the first wins), hot plug while running.

pub mod card;
pub mod choose;
pub mod ioctl;

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;

use embedded_graphics::prelude::Size;
use embedded_graphics::primitives::Rectangle;

use super::canvas::{Canvas, PixelFormat};
use super::console::{Console, Visibility};
use super::devmem::Mapping;
use super::painter::{Painter, PixelDevice, Shown};
use crate::screen::error::DisplayError;
use crate::screen::settings::DisplayConfig;
use choose::Choice;
use ioctl::{Card, ClipRect, Dumb, ModeCrtc};

/// A [`Screen`](crate::screen::Screen) on a DRM card.
pub struct DrmScreen {
    name: String,
    choice: Choice,
    dumb: Dumb,
    fb_id: u32,
    /// What the CRTC showed before devauth, put back on release and drop.
    saved: Option<ModeCrtc>,
    /// Whether devauth's buffer is on the CRTC now (false after a release).
    active: bool,
    /// DIRTYFB failed in a way other than "not needed": said once, then ignored.
    dirty_told: bool,
    canvas: Canvas,
    painter: Painter,
    /// `None` once dropped (before the buffer is destroyed).
    map: Option<Mapping>,
    console: Option<Console>,
    card: Card,
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> DisplayError {
    move |source| DisplayError::Io { what, source }
}

/// What a failed SETCRTC most likely means, for the message.
fn setcrtc_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            " (another program is DRM master: a display server or compositor?)"
        }
        _ => "",
    }
}

impl DrmScreen {
    /// Opens `[display] device`, picks output, mode and CRTC, and shows a black buffer.
    pub fn open(d: &DisplayConfig) -> Result<DrmScreen, DisplayError> {
        let name = format!("drm {}", d.device.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&d.device)
            .map_err(io_err(format!("{name}: opening")))?;
        let card = Card(file);
        // The first program to open the card is master already; asking again is harmless,
        // and a refusal shows up at SETCRTC with a clearer message.
        let _ = card.set_master();
        let dumb_ok = card
            .has_dumb_buffers()
            .map_err(io_err(format!("{name}: GET_CAP (is this a DRM card?)")))?;
        if !dumb_ok {
            return Err(DisplayError::Unsupported(format!(
                "{name}: the driver has no dumb buffers"
            )));
        }
        let res = card
            .resources()
            .map_err(io_err(format!("{name}: reading the outputs")))?;
        let want = d.width.zip(d.height);
        let choice = choose::choose(&res, want)
            .map_err(|why| DisplayError::Unsupported(format!("{name}: {why}")))?;
        let (w, h) = (
            u32::from(choice.mode.hdisplay),
            u32::from(choice.mode.vdisplay),
        );
        let dumb = card
            .create_dumb(w, h)
            .map_err(io_err(format!("{name}: creating a {w}x{h} buffer")))?;
        let fb_id = match card.add_fb(w, h, &dumb) {
            Ok(id) => id,
            Err(e) => {
                let _ = card.destroy_dumb(dumb.handle);
                return Err(io_err(format!("{name}: ADDFB"))(e));
            }
        };
        let map = card
            .map_dumb(dumb.handle)
            .and_then(|offset| {
                let len = usize::try_from(dumb.size)
                    .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
                Mapping::new(&card.0, len, offset)
            })
            .map_err(|e| {
                let _ = card.rm_fb(fb_id);
                let _ = card.destroy_dumb(dumb.handle);
                io_err(format!("{name}: mapping the buffer"))(e)
            })?;
        let pitch = dumb.pitch as usize;
        let mut canvas = Canvas::new(Size::new(w, h), pitch, PixelFormat::XRGB8888, d.rotation);
        if canvas.stride() != pitch || (pitch * h as usize) as u64 > dumb.size {
            return Err(DisplayError::Unsupported(format!(
                "{name}: the driver's buffer (pitch {pitch}, {} bytes) does not hold {w}x{h}",
                dumb.size
            )));
        }
        canvas.mark_all_dirty();
        let logical = d.rotation.logical(Size::new(w, h));
        let saved = card.get_crtc(choice.crtc).ok();
        let mut screen = DrmScreen {
            name,
            choice,
            dumb,
            fb_id,
            saved,
            active: false,
            dirty_told: false,
            canvas,
            painter: Painter::new(logical, d.profile()),
            map: Some(map),
            // The card is open: the console can be taken (see screen::console).
            console: Some(Console::take(&d.tty)),
            card,
        };
        // On an error here, dropping `screen` frees what was made.
        screen.activate()?;
        Ok(screen)
    }

    /// The output, mode and CRTC in use.
    pub fn choice(&self) -> &Choice {
        &self.choice
    }

    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    /// Master (again) and devauth's buffer on the CRTC.
    fn activate(&mut self) -> Result<(), DisplayError> {
        let _ = self.card.set_master();
        if let Some(c) = &mut self.console {
            c.grab();
        }
        let c = &self.choice;
        self.card
            .set_crtc(c.crtc, self.fb_id, (0, 0), &[c.connector], Some(&c.mode))
            .map_err(|e| {
                let hint = setcrtc_hint(&e);
                DisplayError::Io {
                    what: format!(
                        "{}: showing {}x{} on {}{hint}",
                        self.name, c.mode.hdisplay, c.mode.vdisplay, c.name
                    ),
                    source: e,
                }
            })?;
        self.active = true;
        Ok(())
    }

    /// Master dropped and the console's mode back; with `restore` (a blank release, drop) the
    /// CRTC back as it was. Without it (`release_display = "keep"`) devauth's last picture
    /// stays on the output until the device's own UI sets its mode, or devauth exits.
    fn deactivate(&mut self, restore: bool) {
        if self.active && restore {
            let restored = match &self.saved {
                Some(s) if s.mode_valid != 0 && s.fb_id != 0 => self
                    .card
                    .set_crtc(
                        s.crtc_id,
                        s.fb_id,
                        (s.x, s.y),
                        &[self.choice.connector],
                        Some(&s.mode),
                    )
                    .is_ok(),
                _ => false,
            };
            if !restored {
                // Nothing was shown before (or it is gone): switch the CRTC off rather than
                // leave a code on the screen.
                let _ = self.card.set_crtc(self.choice.crtc, 0, (0, 0), &[], None);
            }
        }
        self.active = false;
        let _ = self.card.drop_master();
        if let Some(c) = &mut self.console {
            c.hand_back();
        }
    }

    fn flush(&mut self, rect: Rectangle) {
        let clip = clip_of(rect);
        match self.card.dirty(self.fb_id, clip) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
                ) => {}
            Err(e) if !self.dirty_told => {
                self.dirty_told = true;
                eprintln!(
                    "devauth: {}: DIRTYFB: {e}; the screen may not update",
                    self.name
                );
            }
            Err(_) => {}
        }
    }
}

/// A changed rectangle as DIRTYFB's clip (x2/y2 exclusive, u16 like the kernel's).
pub fn clip_of(r: Rectangle) -> ClipRect {
    let u = |v: i64| u16::try_from(v.max(0)).unwrap_or(u16::MAX);
    let x = i64::from(r.top_left.x);
    let y = i64::from(r.top_left.y);
    ClipRect {
        x1: u(x),
        y1: u(y),
        x2: u(x + i64::from(r.size.width)),
        y2: u(y + i64::from(r.size.height)),
    }
}

impl PixelDevice for DrmScreen {
    type Canvas = Canvas;

    fn painter_and_canvas(&mut self) -> (&mut Painter, &mut Canvas) {
        (&mut self.painter, &mut self.canvas)
    }

    fn push(&mut self) -> Result<(), DisplayError> {
        let Some(map) = &mut self.map else {
            return Ok(());
        };
        if let Some(rect) = map.copy_dirty(&mut self.canvas, 0, &self.name)? {
            self.flush(rect);
        }
        Ok(())
    }

    fn prepare(&mut self) -> Result<Shown, DisplayError> {
        if !self.active {
            // Shown again after a release: take the output back, draw it all.
            self.activate()?;
            return Ok(Shown::Lost);
        }
        let Some(console) = &mut self.console else {
            return Ok(Shown::Same);
        };
        match console.visibility() {
            Visibility::Shown => Ok(Shown::Same),
            Visibility::Hidden => Ok(Shown::Hidden),
            Visibility::Returned => {
                // Whatever the other VT did to the CRTC, devauth's buffer goes back on it.
                self.activate()?;
                Ok(Shown::Lost)
            }
        }
    }

    fn hand_back(&mut self, blank: bool) -> Result<(), DisplayError> {
        self.deactivate(blank);
        Ok(())
    }
}

impl Drop for DrmScreen {
    fn drop(&mut self) {
        // After a release devauth is no longer master: leave the output to whoever has it.
        self.deactivate(self.active);
        let _ = self.card.rm_fb(self.fb_id);
        self.map = None; // unmapped before the buffer goes
        let _ = self.card.destroy_dumb(self.dumb.handle);
        self.console = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::prelude::Point;

    #[test]
    fn damage_becomes_an_exclusive_clip() {
        let r = Rectangle::new(Point::new(10, 20), Size::new(30, 5));
        assert_eq!(
            clip_of(r),
            ClipRect {
                x1: 10,
                y1: 20,
                x2: 40,
                y2: 25
            }
        );
        let big = Rectangle::new(Point::new(0, 0), Size::new(70_000, 1));
        assert_eq!(clip_of(big).x2, u16::MAX);
    }

    #[test]
    fn errors_name_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("card9");
        let d = DisplayConfig {
            device: missing.clone(),
            ..DisplayConfig::default()
        };
        let e = DrmScreen::open(&d).err().unwrap().to_string();
        assert!(
            e.contains(&format!("drm {}: opening", missing.display())),
            "{e}"
        );
        // A plain file is no card: the first ioctl fails and says so.
        let file = dir.path().join("card0");
        std::fs::write(&file, b"").unwrap();
        let d = DisplayConfig {
            device: file.clone(),
            ..DisplayConfig::default()
        };
        let e = DrmScreen::open(&d).err().unwrap().to_string();
        assert!(e.contains("is this a DRM card?"), "{e}");
        assert!(e.contains(&file.display().to_string()), "{e}");
    }

    #[test]
    fn a_refused_mode_set_suggests_another_master() {
        assert!(setcrtc_hint(&io::Error::from_raw_os_error(libc::EACCES)).contains("master"));
        assert_eq!(
            setcrtc_hint(&io::Error::from_raw_os_error(libc::EINVAL)),
            ""
        );
    }
}
