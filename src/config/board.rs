//! `[display]` and board files: the board profile named by `board` is found (next to the
//! config, installed, or built in), parsed and applied under the config's own keys, once, at
//! load. The result is the screen's [`DisplayConfig`]; no screen code calls back here.

use super::*;

/// Where installed board profiles live (searched after `boards/` next to the config).
pub const INSTALLED_BOARDS_DIR: &str = "/usr/share/devauth/boards";

/// Board profiles compiled in, searched last, so `devauth render --board` works anywhere.
pub const BUILTIN_BOARDS: [(&str, &str); 6] = [
    ("tv-1080p", include_str!("../../boards/tv-1080p.toml")),
    ("tv-720p", include_str!("../../boards/tv-720p.toml")),
    (
        "pi-st7789-240x240",
        include_str!("../../boards/pi-st7789-240x240.toml"),
    ),
    (
        "pi-ili9341-320x240",
        include_str!("../../boards/pi-ili9341-320x240.toml"),
    ),
    (
        "pi-ssd1306-128x64",
        include_str!("../../boards/pi-ssd1306-128x64.toml"),
    ),
    (
        "pi-fb1-480x320",
        include_str!("../../boards/pi-fb1-480x320.toml"),
    ),
];

pub(super) const MAX_BOARD_BYTES: u64 = 16 * 1024;

/// A board profile's text and where it came from.
pub struct BoardFile {
    pub path: PathBuf,
    pub text: String,
}

/// Finds board `name`: `boards/NAME.toml` next to `config` (when given), then
/// [`INSTALLED_BOARDS_DIR`], then the built-in profiles. The error is the reason only.
pub fn find_board(name: &str, config: Option<&Path>) -> Result<BoardFile, String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        return Err(format!(
            "{name:?}: a board name is lowercase letters, digits, '-' and '_'"
        ));
    }
    let file = format!("{name}.toml");
    let mut dirs = Vec::new();
    if let Some(dir) = config.and_then(Path::parent) {
        dirs.push(dir.join("boards"));
    }
    dirs.push(PathBuf::from(INSTALLED_BOARDS_DIR));
    for dir in &dirs {
        let path = dir.join(&file);
        match read_capped(&path, MAX_BOARD_BYTES) {
            Ok(Capped::Fits(bytes)) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| format!("{}: not valid UTF-8", path.display()))?;
                return Ok(BoardFile { path, text });
            }
            Ok(Capped::TooLarge(n)) => {
                return Err(format!(
                    "{}: {n} bytes is too large for a board",
                    path.display()
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    match BUILTIN_BOARDS.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => Ok(BoardFile {
            path: PathBuf::from(format!("(built-in)/boards/{file}")),
            text: (*text).to_string(),
        }),
        None => {
            let names: Vec<&str> = BUILTIN_BOARDS.iter().map(|(n, _)| *n).collect();
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            Err(format!(
                "no board {name:?} in {} nor built in ({})",
                searched.join(", "),
                names.join(", ")
            ))
        }
    }
}

/// The `[display]` of board `name` alone (for `devauth render --board`).
pub fn board_display(name: &str, config: Option<&Path>) -> Result<DisplayConfig, ConfigError> {
    let found = find_board(name, config).map_err(|why| ConfigError::Invalid {
        path: config.map(Path::to_path_buf).unwrap_or_default(),
        key: if config.is_some() { "board" } else { "--board" }.to_string(),
        line: None,
        message: why,
    })?;
    let cx = Cx {
        text: &found.text,
        source: &found.path,
    };
    let board = parse_board(&cx)?;
    let mut out = display_from(&[(&cx, &board)], None)?;
    out.board = Some(name.to_string());
    Ok(out)
}

pub(super) fn parse_board(cx: &Cx) -> Result<RawDisplay, ConfigError> {
    let raw: RawBoard = toml::from_str(cx.text).map_err(|e| cx.toml_error(e))?;
    let display = raw.display.map(Spanned::into_inner).unwrap_or_default();
    if let Some(b) = &display.board {
        return Err(cx.at(
            "display.board",
            b,
            "a board profile cannot name another board",
        ));
    }
    Ok(display)
}

/// The first layer that sets a key wins: the config over the board.
pub(super) fn pick<'a, T>(
    layers: &'a [(&'a Cx<'a>, &'a RawDisplay)],
    key: impl Fn(&'a RawDisplay) -> &'a Option<T>,
) -> Option<(&'a Cx<'a>, &'a T)> {
    layers
        .iter()
        .find_map(|(cx, raw)| key(raw).as_ref().map(|v| (*cx, v)))
}

/// Validates the merged `[display]` keys. Errors name the file (config or board) the value
/// came from, its line and the key.
pub(super) fn display_from(
    layers: &[(&Cx, &RawDisplay)],
    section: Option<Range<usize>>,
) -> Result<DisplayConfig, ConfigError> {
    let mut out = DisplayConfig::default();
    let Some((main, _)) = layers.first() else {
        return Ok(out);
    };
    let int = |key: &str, v: Option<(&Cx, &Spanned<i64>)>, min: i64, max: i64| {
        v.map(|(cx, v)| {
            cx.int(&format!("display.{key}"), v, min, max)
                .and_then(|n| u32::try_from(n).map_err(|_| cx.at(key, v, "out of range")))
        })
        .transpose()
    };
    let path = |key: &str, v: Option<(&Cx, &Str)>| {
        v.map(|(cx, v)| {
            cx.path(&format!("display.{key}"), v, false)
                .map(|p| cx.resolve(&p))
        })
        .transpose()
    };
    if let Some((cx, v)) = pick(layers, |r| &r.backend) {
        let options: Vec<(&str, DisplayBackend)> =
            DisplayBackend::ALL.iter().map(|b| (b.name(), *b)).collect();
        out.backend = cx.choice("display.backend", v, &options)?;
    }
    out.png = path("png", pick(layers, |r| &r.png))?;
    let device = path("device", pick(layers, |r| &r.device))?;
    out.width = int("width", pick(layers, |r| &r.width), 8, 8192)?;
    out.height = int("height", pick(layers, |r| &r.height), 8, 8192)?;
    if let Some((cx, v)) = pick(layers, |r| &r.format) {
        let options: Vec<(&str, PixelFormat)> = PixelFormat::NAMED.to_vec();
        out.format = Some(cx.choice("display.format", v, &options)?);
    }
    out.stride = int("stride", pick(layers, |r| &r.stride), 1, 8192 * 4)?;
    if let Some((cx, v)) = pick(layers, |r| &r.rotation) {
        let deg = u32::try_from(*v.get_ref())
            .ok()
            .and_then(Rotation::from_degrees);
        out.rotation = deg.ok_or_else(|| {
            cx.at(
                "display.rotation",
                v,
                format!("{} is not 0, 90, 180 or 270", v.get_ref()),
            )
        })?;
    }
    if let Some(p) = int(
        "title_safe_percent",
        pick(layers, |r| &r.title_safe_percent),
        0,
        20,
    )? {
        out.title_safe_percent = p;
    }
    if let Some(n) = int("wait_secs", pick(layers, |r| &r.wait_secs), 0, 120)? {
        out.wait_secs = n;
    }
    if let Some((cx, v)) = pick(layers, |r| &r.tty) {
        out.tty = ConsoleTty::parse(v.get_ref()).map_err(|why| cx.at("display.tty", v, why))?;
    }
    if let Some((cx, v)) = pick(layers, |r| &r.controller) {
        let options: Vec<(&str, Controller)> =
            Controller::ALL.iter().map(|c| (c.name(), *c)).collect();
        out.spi.controller = Some(cx.choice("display.controller", v, &options)?);
    }
    if let Some(p) = path("spi_device", pick(layers, |r| &r.spi_device))? {
        out.spi.device = p;
    }
    if let Some(n) = int(
        "spi_speed_hz",
        pick(layers, |r| &r.spi_speed_hz),
        100_000,
        100_000_000,
    )? {
        out.spi.speed_hz = n;
    }
    if let Some(n) = int("spi_mode", pick(layers, |r| &r.spi_mode), 0, 3)? {
        out.spi.mode = u8::try_from(n).unwrap_or(0);
    }
    if let Some(p) = path("gpio_chip", pick(layers, |r| &r.gpio_chip))? {
        out.spi.gpio_chip = p;
    }
    out.spi.dc_pin = int("dc_pin", pick(layers, |r| &r.dc_pin), 0, 1023)?;
    out.spi.reset_pin = int("reset_pin", pick(layers, |r| &r.reset_pin), 0, 1023)?;
    out.spi.backlight_pin = int("backlight_pin", pick(layers, |r| &r.backlight_pin), 0, 1023)?;
    if let Some((_, v)) = pick(layers, |r| &r.backlight_active_low) {
        out.spi.backlight_active_low = *v.get_ref();
    }
    if let Some(n) = int("x_offset", pick(layers, |r| &r.x_offset), 0, 320)? {
        out.spi.x_offset = n;
    }
    if let Some(n) = int("y_offset", pick(layers, |r| &r.y_offset), 0, 320)? {
        out.spi.y_offset = n;
    }
    if let Some((cx, v)) = pick(layers, |r| &r.color_order) {
        out.spi.color_order = cx.choice(
            "display.color_order",
            v,
            &[("rgb", ColorOrder::Rgb), ("bgr", ColorOrder::Bgr)],
        )?;
    }
    if let Some((_, v)) = pick(layers, |r| &r.invert_colors) {
        out.spi.invert_colors = *v.get_ref();
    }
    if let Some((cx, v)) = pick(layers, |r| &r.theme) {
        let options: Vec<(&str, Theme)> = Theme::ALL.iter().map(|t| (t.name(), *t)).collect();
        out.theme = cx.choice("display.theme", v, &options)?;
    }
    if let Some((cx, v)) = pick(layers, |r| &r.text_scale) {
        let n = *v.get_ref();
        if !(1.0..=3.0).contains(&n) {
            return Err(cx.at(
                "display.text_scale",
                v,
                format!("{n} is not between 1.0 and 3.0"),
            ));
        }
        out.text_percent = (n * 100.0).round() as u32;
    }
    if let Some((cx, v)) = pick(layers, |r| &r.device_name) {
        let name = v.get_ref();
        if name.trim().is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control)
        {
            return Err(cx.at(
                "display.device_name",
                v,
                "must be 1 to 60 characters, without control characters",
            ));
        }
        out.device_name = Some(name.trim().to_string());
    }

    if let Some((cx, v)) = pick(layers, |r| &r.language) {
        out.language = crate::locale::choose::LanguageSetting::parse(v.get_ref())
            .map_err(|why| cx.at("display.language", v, why))?;
    }
    if let Some(p) = path("locale_dir", pick(layers, |r| &r.locale_dir))? {
        out.locale_dir = p;
    }

    out.device = match device {
        Some(p) => p,
        None if out.backend == DisplayBackend::Drm => PathBuf::from(DEFAULT_DRM_DEVICE),
        None => out.device,
    };

    // Rules across keys; reported against the config's [display] section.
    let missing = |key: &str, why: &str| main.invalid(key, section.clone(), why.to_string());
    if out.width.is_some() != out.height.is_some() {
        let key = if out.width.is_some() {
            "display.height"
        } else {
            "display.width"
        };
        return Err(missing(key, "missing: width and height are set together"));
    }
    match out.backend {
        DisplayBackend::Png => {
            if out.png.is_none() {
                return Err(missing(
                    "display.png",
                    "missing: backend = \"png\" needs png = \"PATH\"",
                ));
            }
            if out.size().is_none() {
                return Err(missing(
                    "display.width",
                    "missing: backend = \"png\" needs width and height (or a board)",
                ));
            }
        }
        DisplayBackend::Spi => {
            let Some(controller) = out.spi.controller else {
                return Err(missing(
                    "display.controller",
                    "missing: backend = \"spi\" needs controller (st7789, ili9341, ssd1306) or a board",
                ));
            };
            if out.spi.dc_pin.is_none() {
                return Err(missing(
                    "display.dc_pin",
                    "missing: an SPI panel needs its data/command GPIO line",
                ));
            }
            match (controller, out.size()) {
                (Controller::Ssd1306, Some(s)) if s != Size::new(128, 64) => {
                    return Err(missing(
                        "display.width",
                        "the ssd1306 driver supports 128x64 only",
                    ));
                }
                (_, None) => {
                    return Err(missing(
                        "display.width",
                        "missing: an SPI panel needs width and height",
                    ));
                }
                _ => {}
            }
        }
        DisplayBackend::Terminal
        | DisplayBackend::None
        | DisplayBackend::Framebuffer
        | DisplayBackend::Drm => {}
    }
    Ok(out)
}

impl Cx<'_> {
    pub(super) fn display(
        &self,
        raw: Option<Spanned<RawDisplay>>,
    ) -> Result<DisplayConfig, ConfigError> {
        let Some(raw) = raw else {
            return Ok(DisplayConfig::default());
        };
        let section = raw.span();
        let raw = raw.into_inner();
        let Some(name) = &raw.board else {
            return display_from(&[(self, &raw)], Some(section));
        };
        let board_name = name.get_ref();
        let found = find_board(board_name, Some(self.source))
            .map_err(|why| self.at("display.board", name, why))?;
        let board_cx = Cx {
            text: &found.text,
            source: &found.path,
        };
        let board = parse_board(&board_cx)?;
        let mut out = display_from(&[(self, &raw), (&board_cx, &board)], Some(section))?;
        out.board = Some(board_name.clone());
        Ok(out)
    }
}
