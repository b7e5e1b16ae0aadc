//! What the pairing screen shows, as plain data, and the `Screen` trait every display backend
//! implements.
//!
//! The flow driver turns protocol state into a [`View`]; a backend turns a `View` into pixels or
//! terminal text. Backends never see tokens or the device code: a `View` holds nothing secret.

use std::time::Duration;

pub mod canvas;
pub mod catalog;
#[cfg(any(feature = "fbdev", feature = "drm"))]
pub mod console;
pub mod device_wait;
#[cfg(any(feature = "fbdev", feature = "drm"))]
pub mod devmem;
pub mod draw;
#[cfg(feature = "drm")]
pub mod drm;
pub mod error;
#[cfg(feature = "fbdev")]
pub mod fbdev;
pub mod fonts;
pub mod language;
pub mod layout;
pub mod painter;
#[cfg(feature = "png")]
pub mod png;
pub mod profiled;
pub mod qr;
pub mod settings;
#[cfg(feature = "spi")]
pub mod spi;
pub mod terminal;

/// One screenful, a pure function of the flow's state and the time left.
///
/// Each state has its own words (`locales/en.toml`); a person reads one plain sentence, never
/// a protocol detail: those go to the log and `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// A code is live: the person should visit the URL (or scan the QR) and type the code.
    WaitingForUser(CodeScreen),
    /// The wall clock is not yet synchronised (no RTC, NTP pending): TLS would fail.
    WaitingForClock,
    /// The network or the server failed; retrying in `in_secs`.
    Retrying {
        /// What failed, for the log and `--json` only: the screen says it in plain words.
        reason: String,
        in_secs: u64,
        /// The live code, if any, so the code stays on screen while retrying.
        code: Option<CodeScreen>,
    },
    /// Paired. Both as the provider sent them; the layout sanitises and leaves out what its
    /// faces cannot draw.
    Paired {
        /// E-mail, user name or subject, when known.
        account: Option<String>,
        /// The person's name (the ID token's or userinfo's `name` claim), when sent.
        name: Option<String>,
    },
    /// The person refused access on the provider's page.
    Denied,
    /// Pairing was stopped (a signal) before it paired.
    Stopped {
        /// A code was on the screen: the person is told it no longer works.
        code_shown: bool,
    },
    /// Pairing failed; `problem` picks the one sentence shown (the details go to the log).
    Error { problem: Problem },
}

/// What went wrong, in the terms a person in front of the screen can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The sign-in service could not be reached.
    Network,
    /// The sign-in service refused, or answered in a way that cannot be used.
    Service,
    /// The tokens could not be stored on the device.
    Storage,
    /// The device's own configuration is wrong.
    Setup,
    Other,
}

impl Problem {
    /// The one sentence the error screens say for it.
    pub fn sentence(self) -> catalog::Msg {
        use catalog::Msg;
        match self {
            Problem::Network => Msg::ErrorNetwork,
            Problem::Service => Msg::ErrorService,
            Problem::Storage => Msg::ErrorStorage,
            Problem::Setup => Msg::ErrorSetup,
            Problem::Other => Msg::ErrorOther,
        }
    }
}

/// The data of the main pairing screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeScreen {
    /// Where to go, shown as text (RFC 8628 §3.3: always shown).
    pub verification_uri: String,
    /// What the QR code carries: `verification_uri_complete` when the server sent one, else
    /// `verification_uri`.
    pub qr_payload: String,
    /// Exactly as the server sent it (dashes included).
    pub user_code: String,
    /// The provider's own human text (Microsoft's `message`), when sent.
    pub message: Option<String>,
    /// Time until this code dies.
    pub remaining: Duration,
    /// The code's whole lifetime, for a progress bar.
    pub lifetime: Duration,
    /// True when this code replaced an expired one ("new code").
    pub renewed: bool,
    /// The account profile being added ("Adding: <profile>"), when pairing a named one.
    pub profile: Option<String>,
}

/// A display backend. `show` is called on every change of the view (including each countdown
/// tick); a backend is free to redraw only what changed.
pub trait Screen {
    fn show(&mut self, view: &View) -> Result<(), crate::screen::error::DisplayError>;

    /// Hands the display back to the device's own UI (`devauth run`, after the "paired" screen
    /// and when it stops while a code is shown): `blank` clears it, otherwise the last picture
    /// stays. The default does nothing (a terminal keeps its scrollback).
    fn release(&mut self, blank: bool) -> Result<(), crate::screen::error::DisplayError> {
        let _ = blank;
        Ok(())
    }
}

/// No screen at all: the device's own UI draws from `devauth pair --json`.
#[derive(Debug, Default)]
pub struct NoScreen;

impl Screen for NoScreen {
    fn show(&mut self, _view: &View) -> Result<(), crate::screen::error::DisplayError> {
        Ok(())
    }
}

/// The `png` backend for `[display]`.
#[cfg(feature = "png")]
pub fn open_png(
    d: &crate::screen::settings::DisplayConfig,
) -> Result<Box<dyn Screen>, crate::screen::error::DisplayError> {
    let (Some(path), Some(size)) = (&d.png, d.size()) else {
        return Err(crate::screen::error::DisplayError::Unsupported(
            "png: needs png = PATH and a size".to_string(),
        ));
    };
    Ok(Box::new(png::PngScreen::new(
        path,
        size,
        d.rotation,
        d.profile(),
    )))
}

#[cfg(not(feature = "png"))]
pub fn open_png(
    _d: &crate::screen::settings::DisplayConfig,
) -> Result<Box<dyn Screen>, crate::screen::error::DisplayError> {
    Err(not_built("png", "png"))
}

/// The `framebuffer` backend for `[display]`.
#[cfg(feature = "fbdev")]
pub fn open_framebuffer(
    d: &crate::screen::settings::DisplayConfig,
) -> Result<Box<dyn Screen>, crate::screen::error::DisplayError> {
    Ok(Box::new(fbdev::FbScreen::open(d)?))
}

#[cfg(not(feature = "fbdev"))]
pub fn open_framebuffer(
    _d: &crate::screen::settings::DisplayConfig,
) -> Result<Box<dyn Screen>, crate::screen::error::DisplayError> {
    Err(not_built("framebuffer", "fbdev"))
}

/// The `drm` backend for `[display]`.
#[cfg(feature = "drm")]
pub fn open_drm(
    d: &crate::screen::settings::DisplayConfig,
) -> Result<Box<dyn Screen>, crate::screen::error::DisplayError> {
    Ok(Box::new(drm::DrmScreen::open(d)?))
}

#[cfg(not(feature = "drm"))]
pub fn open_drm(
    _d: &crate::screen::settings::DisplayConfig,
) -> Result<Box<dyn Screen>, crate::screen::error::DisplayError> {
    Err(not_built("drm", "drm"))
}

/// The `spi` backend for `[display]`.
#[cfg(feature = "spi")]
pub fn open_spi(
    d: &crate::screen::settings::DisplayConfig,
) -> Result<Box<dyn Screen>, crate::screen::error::DisplayError> {
    spi::open(d)
}

#[cfg(not(feature = "spi"))]
pub fn open_spi(
    _d: &crate::screen::settings::DisplayConfig,
) -> Result<Box<dyn Screen>, crate::screen::error::DisplayError> {
    Err(not_built("spi", "spi"))
}

/// Whether `backend` is in this build: asked before waiting for its device, so a backend left
/// out (e.g. `spi` without the cargo feature) is said at once, not after `wait_secs`.
pub fn check_built(
    backend: crate::screen::settings::DisplayBackend,
) -> Result<(), crate::screen::error::DisplayError> {
    use crate::screen::settings::DisplayBackend as B;
    let (built, name, feature) = match backend {
        B::None | B::Terminal => (true, "", ""),
        B::Png => (cfg!(feature = "png"), "png", "png"),
        B::Framebuffer => (cfg!(feature = "fbdev"), "framebuffer", "fbdev"),
        B::Drm => (cfg!(feature = "drm"), "drm", "drm"),
        B::Spi => (cfg!(feature = "spi"), "spi", "spi"),
    };
    if built {
        Ok(())
    } else {
        Err(not_built(name, feature))
    }
}

fn not_built(backend: &str, feature: &str) -> crate::screen::error::DisplayError {
    crate::screen::error::DisplayError::Unsupported(format!(
        "backend \"{backend}\" is not in this build of devauth (cargo feature \"{feature}\")"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::settings::DisplayBackend as B;

    #[test]
    fn check_built_follows_the_cargo_features() {
        for (backend, built) in [
            (B::Terminal, true),
            (B::None, true),
            (B::Png, cfg!(feature = "png")),
            (B::Framebuffer, cfg!(feature = "fbdev")),
            (B::Drm, cfg!(feature = "drm")),
            (B::Spi, cfg!(feature = "spi")),
        ] {
            match check_built(backend) {
                Ok(()) => assert!(built, "{backend:?}"),
                Err(e) => {
                    assert!(!built, "{backend:?}");
                    assert!(e.to_string().contains("not in this build"), "{e}");
                }
            }
        }
    }
}
