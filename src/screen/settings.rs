//! The resolved display settings a screen backend is opened with: `[display]` after the board
//! profile and the config's own keys were applied. The configuration builds them once at load
//! (`config::Config::load`); backends only read them and never call back into the config.

use crate::locale::choose::LanguageSetting;
use crate::screen::canvas::{PixelFormat, Rotation};
use crate::screen::language::Language;
use crate::screen::layout::{Profile, Theme};
use embedded_graphics::prelude::Size;
use std::path::PathBuf;

/// `[display]`, with the board profile (if any) applied and the config's keys over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayConfig {
    pub backend: DisplayBackend,
    /// The board profile's name, when one was used.
    pub board: Option<String>,
    /// `png`: the file the `png` backend writes.
    pub png: Option<PathBuf>,
    /// `device`: the framebuffer device (default `/dev/fb0`), or a plain file; with
    /// `backend = "drm"` the DRM card (default `/dev/dri/card0`).
    pub device: PathBuf,
    /// `width`/`height`: the panel size (png, spi; framebuffer: overrides the device's; drm:
    /// the mode to pick).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `format`: framebuffer pixel format override.
    pub format: Option<PixelFormat>,
    /// `stride`: framebuffer bytes per row override.
    pub stride: Option<u32>,
    pub rotation: Rotation,
    /// `title_safe_percent`: margin kept free on each side (TV overscan).
    pub title_safe_percent: u32,
    /// `wait_secs`: how long to wait for the device node to appear (default
    /// [`DEFAULT_WAIT_SECS`]).
    pub wait_secs: u32,
    /// `tty`: the VT held in graphics mode while a framebuffer or DRM screen is up.
    pub tty: ConsoleTty,
    pub spi: SpiSettings,
    /// `theme`: the pixel screens' colours.
    pub theme: Theme,
    /// `text_scale` in percent (100..=300).
    pub text_percent: u32,
    /// `device_name`: named in the warning against code phishing.
    pub device_name: Option<String>,
    /// `language`: a BCP 47 tag or `"auto"`.
    pub language: LanguageSetting,
    /// `locale_dir`: where installed locale packs are.
    pub locale_dir: PathBuf,
    /// The language `language` and `locale_dir` come to: English until a command resolves it
    /// before opening a screen ([`crate::screen::language::resolve`]), so loading a config
    /// never reads a pack.
    pub resolved_language: Language,
}

/// `[display] tty`: which virtual terminal devauth puts in graphics mode while it draws, so
/// the kernel console neither blinks its cursor nor prints over the screen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConsoleTty {
    /// `"auto"` (the default): the VT on screen when the display opens.
    #[default]
    Active,
    /// `"none"`: leave the console alone.
    Off,
    /// A VT device, e.g. `/dev/tty1`.
    Path(PathBuf),
}

impl ConsoleTty {
    /// Reads the key's value; the error says what is accepted.
    pub fn parse(value: &str) -> Result<ConsoleTty, String> {
        match value {
            "auto" => Ok(ConsoleTty::Active),
            "none" => Ok(ConsoleTty::Off),
            v if v.starts_with("/dev/tty") && v.len() <= 32 => Ok(ConsoleTty::Path(v.into())),
            v => Err(format!(
                "{v:?} is not \"auto\", \"none\" or a VT device like \"/dev/tty1\""
            )),
        }
    }
}

/// Long enough for a display driver that probes a little after devauth starts (a module loaded
/// by udev, a deferred SPI probe), short enough that a wrong `device` is reported promptly.
pub const DEFAULT_WAIT_SECS: u32 = 5;

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            backend: DisplayBackend::Terminal,
            board: None,
            png: None,
            device: PathBuf::from(DEFAULT_FB_DEVICE),
            width: None,
            height: None,
            format: None,
            stride: None,
            rotation: Rotation::R0,
            title_safe_percent: 0,
            wait_secs: DEFAULT_WAIT_SECS,
            tty: ConsoleTty::Active,
            spi: SpiSettings::default(),
            theme: Theme::Dark,
            text_percent: 100,
            device_name: None,
            language: LanguageSetting::Auto,
            locale_dir: PathBuf::from(crate::locale::source::DEFAULT_DIR),
            resolved_language: Language::english(),
        }
    }
}

impl DisplayConfig {
    /// The panel size (before rotation) when known from the config: `width` × `height`, or
    /// the SSD1306's fixed 128×64.
    pub fn size(&self) -> Option<Size> {
        match (self.width, self.height, self.spi.controller) {
            (Some(w), Some(h), _) => Some(Size::new(w, h)),
            (None, None, Some(Controller::Ssd1306)) => Some(Size::new(128, 64)),
            _ => None,
        }
    }

    /// Resolves `language` from the environment and the packs there are, and says in the log
    /// what fell back to what (the screen's words, and the English the 128×64 OLED shows for
    /// scripts unreadable at its size).
    pub fn resolve_language(&mut self) {
        let (language, notes) =
            crate::screen::language::resolve_from_env(&self.language, &self.locale_dir);
        for n in notes {
            eprintln!("devauth: language: {n}");
        }
        if self.profile().mono && !language.has_mono_size() {
            eprintln!(
                "devauth: language: {} is not readable on a 128x64 one-bit panel; it shows English",
                language.tag()
            );
        }
        self.resolved_language = language;
    }

    /// What the layout needs to know beyond the size.
    pub fn profile(&self) -> Profile {
        Profile {
            safe_percent: self.title_safe_percent,
            mono: self.spi.controller == Some(Controller::Ssd1306),
            theme: self.theme,
            text_percent: self.text_percent,
            device_name: self.device_name.clone(),
            language: self.resolved_language.clone(),
        }
    }
}

/// The SPI panel keys of `[display]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiSettings {
    pub controller: Option<Controller>,
    /// `spi_device` (default `/dev/spidev0.0`).
    pub device: PathBuf,
    /// `spi_speed_hz` (default 16 MHz).
    pub speed_hz: u32,
    /// `spi_mode` 0..=3 (default 0).
    pub mode: u8,
    /// `gpio_chip` (default `/dev/gpiochip0`).
    pub gpio_chip: PathBuf,
    pub dc_pin: Option<u32>,
    pub reset_pin: Option<u32>,
    pub backlight_pin: Option<u32>,
    pub backlight_active_low: bool,
    pub x_offset: u32,
    pub y_offset: u32,
    pub color_order: ColorOrder,
    pub invert_colors: bool,
}

impl Default for SpiSettings {
    fn default() -> Self {
        SpiSettings {
            controller: None,
            device: PathBuf::from("/dev/spidev0.0"),
            speed_hz: 16_000_000,
            mode: 0,
            gpio_chip: PathBuf::from("/dev/gpiochip0"),
            dc_pin: None,
            reset_pin: None,
            backlight_pin: None,
            backlight_active_low: false,
            x_offset: 0,
            y_offset: 0,
            color_order: ColorOrder::Rgb,
            invert_colors: false,
        }
    }
}

/// The panel controller an SPI board uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    St7789,
    Ili9341,
    Ssd1306,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::St7789, Controller::Ili9341, Controller::Ssd1306];

    pub fn name(self) -> &'static str {
        match self {
            Controller::St7789 => "st7789",
            Controller::Ili9341 => "ili9341",
            Controller::Ssd1306 => "ssd1306",
        }
    }
}

/// Subpixel order of a colour panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorOrder {
    Rgb,
    Bgr,
}

/// Default `[display] device`.
pub const DEFAULT_FB_DEVICE: &str = "/dev/fb0";
/// Default `[display] device` of the `drm` backend.
pub const DEFAULT_DRM_DEVICE: &str = "/dev/dri/card0";

/// Which screen backend shows the pairing code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DisplayBackend {
    /// Text on stdout/stderr (`"terminal"`).
    #[default]
    Terminal,
    /// No screen (`"none"`): only `--json` events and logs carry the code.
    None,
    /// A PNG file rewritten on every change (`"png"`).
    Png,
    /// Linux fbdev (`"framebuffer"`).
    Framebuffer,
    /// An SPI panel through spidev and the GPIO character device (`"spi"`).
    Spi,
    /// Linux DRM/KMS: a dumb buffer on the first connected output (`"drm"`).
    Drm,
}

impl DisplayBackend {
    pub const ALL: [DisplayBackend; 6] = [
        DisplayBackend::Terminal,
        DisplayBackend::None,
        DisplayBackend::Png,
        DisplayBackend::Framebuffer,
        DisplayBackend::Spi,
        DisplayBackend::Drm,
    ];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            DisplayBackend::Terminal => "terminal",
            DisplayBackend::None => "none",
            DisplayBackend::Png => "png",
            DisplayBackend::Framebuffer => "framebuffer",
            DisplayBackend::Spi => "spi",
            DisplayBackend::Drm => "drm",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_values() {
        assert_eq!(ConsoleTty::parse("auto"), Ok(ConsoleTty::Active));
        assert_eq!(ConsoleTty::parse("none"), Ok(ConsoleTty::Off));
        assert_eq!(
            ConsoleTty::parse("/dev/tty1"),
            Ok(ConsoleTty::Path("/dev/tty1".into()))
        );
        for bad in ["", "tty1", "/dev/fb0", "off", "/tmp/tty1"] {
            let e = ConsoleTty::parse(bad).unwrap_err();
            assert!(
                e.contains("/dev/tty1") && e.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
        assert_eq!(DisplayConfig::default().tty, ConsoleTty::Active);
    }
}
