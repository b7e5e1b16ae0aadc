//! QR codes as terminal text: two module rows per text row with Unicode half blocks, a 4-module
//! quiet zone, and dark modules on a light background whatever the terminal's colours.
//!
//! Owns the choice of error-correction level and the text rendering. It does not decide what the
//! QR carries (the flow puts `verification_uri_complete` or `verification_uri` in
//! `CodeScreen::qr_payload`) nor where on the screen it goes.
//!
//! Polarity: a scanner needs dark modules on a light background.
//! - [`QrStyle::DarkOnLight`] (interactive terminals with colours) sets the colours explicitly,
//!   black ink on a white background (SGR 30;47, the 8 base colours every terminal and the Linux
//!   console know), and draws the dark modules as ink.
//! - [`QrStyle::LightBlocks`] (plain output, or `NO_COLOR`) cannot set colours, so it assumes a
//!   light-on-dark terminal, the common default for consoles, serial terminals and SSH clients,
//!   and draws the *light* modules (quiet zone included) as blocks, dark ones as spaces — what
//!   `qrencode -t UTF8` does. On a dark-on-light terminal this comes out inverted, which many
//!   phone scanners still read but not all; that is the price of having no colours.

use qrcode::{Color, EcLevel, QrCode};

use super::half_block;
use crate::screen::error::DisplayError;

/// Modules of light margin around the code (ISO/IEC 18004 asks for 4).
pub const QUIET_ZONE: usize = 4;
/// The largest symbol width (version 6) at which EC level M is kept; above it level L is used
/// when that gives a smaller symbol, so long URLs still fit an 80-column terminal.
const MAX_WIDTH_AT_M: usize = 41;

/// How modules become characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrStyle {
    /// Explicit black-on-white ANSI colours; ink = dark module.
    DarkOnLight,
    /// No escape codes; ink = light module (assumes light text on a dark terminal).
    LightBlocks,
}

/// SGR for black foreground on white background.
pub const DARK_ON_LIGHT: &str = "\x1b[30;47m";
/// SGR reset. Each row ends with it so the background never bleeds into scrolled lines.
pub const RESET: &str = "\x1b[0m";

/// Encodes `payload`, at EC level M for short payloads and L when M would need a symbol larger
/// than version 6 and L gives a smaller one.
pub fn encode(payload: &str) -> Result<QrCode, DisplayError> {
    let at_m = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M);
    if let Ok(code) = &at_m {
        if code.width() <= MAX_WIDTH_AT_M {
            return at_m.map_err(|e| too_long(payload, e));
        }
    }
    let at_l = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::L);
    match (at_m, at_l) {
        (Ok(m), Ok(l)) => Ok(if l.width() < m.width() { l } else { m }),
        (Ok(m), Err(_)) => Ok(m),
        (Err(_), Ok(l)) => Ok(l),
        (Err(e), Err(_)) => Err(too_long(payload, e)),
    }
}

fn too_long(payload: &str, e: qrcode::types::QrError) -> DisplayError {
    DisplayError::Unsupported(format!(
        "qr code: cannot encode {} bytes: {e}",
        payload.len()
    ))
}

/// The module grid including the quiet zone: `true` = dark. Rows and columns outside the grid
/// are light (that is what a quiet zone is).
pub struct Modules {
    colors: Vec<Color>,
    width: usize,
}

impl Modules {
    pub fn new(code: &QrCode) -> Self {
        Modules {
            colors: code.to_colors(),
            width: code.width(),
        }
    }

    /// Side length including the quiet zone on both sides.
    pub fn size(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }

    /// Dark at (x, y) in quiet-zone coordinates; anything outside the symbol is light.
    pub fn dark(&self, x: usize, y: usize) -> bool {
        let (Some(sx), Some(sy)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
            return false;
        };
        if sx >= self.width || sy >= self.width {
            return false;
        }
        self.colors.get(sy * self.width + sx) == Some(&Color::Dark)
    }
}

/// Renders an encoded code as text rows in `style`.
pub fn render(code: &QrCode, style: QrStyle) -> Vec<String> {
    let modules = Modules::new(code);
    let size = modules.size();
    let mut rows = Vec::with_capacity(size.div_ceil(2));
    for ty in 0..size.div_ceil(2) {
        let (y0, y1) = (2 * ty, 2 * ty + 1);
        let mut row = String::with_capacity(size * 3 + 16);
        if style == QrStyle::DarkOnLight {
            row.push_str(DARK_ON_LIGHT);
        }
        for x in 0..size {
            let ink = |y: usize| match style {
                QrStyle::DarkOnLight => y < size && modules.dark(x, y),
                // Below the last module row (odd size) is the terminal's own background, not
                // a light module: no ink, so the quiet zone stays exactly 4 modules.
                QrStyle::LightBlocks => y < size && !modules.dark(x, y),
            };
            row.push(half_block(ink(y0), ink(y1)));
        }
        if style == QrStyle::DarkOnLight {
            row.push_str(RESET);
        }
        rows.push(row);
    }
    rows
}

/// The QR code of `payload` as terminal text rows (no line endings).
///
/// In [`TerminalMode::Interactive`](super::TerminalMode::Interactive) the rows carry explicit
/// black-on-white ANSI colours; in [`TerminalMode::Plain`](super::TerminalMode::Plain) they hold no
/// escape codes and assume a light-on-dark terminal (see the module documentation).
pub fn qr_text(payload: &str, mode: super::TerminalMode) -> Result<Vec<String>, DisplayError> {
    let style = match mode {
        super::TerminalMode::Interactive => QrStyle::DarkOnLight,
        super::TerminalMode::Plain => QrStyle::LightBlocks,
    };
    Ok(render(&encode(payload)?, style))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::terminal::TerminalMode;

    const SHORT: &str = "https://example.com/device";
    /// A typical `verification_uri_complete`: 63 characters.
    const COMPLETE: &str = "https://microsoft.com/devicelogin?otc=WDJB-MJHT&client=abcdefgh";
    /// A long one, beyond what level M fits in version 6.
    const LONG: &str = "https://login.example-identity-provider.com/oauth2/v2.0/device/verify?user_code=WDJB-MJHT&client_id=0123456789abcdef0123456789abcdef&tenant=organizations";

    const MODES: [TerminalMode; 2] = [TerminalMode::Interactive, TerminalMode::Plain];

    /// Strips the interactive colour wrapper, failing on any other escape.
    fn strip_colour(row: &str, mode: TerminalMode) -> &str {
        match mode {
            TerminalMode::Interactive => row
                .strip_prefix(DARK_ON_LIGHT)
                .and_then(|r| r.strip_suffix(RESET))
                .unwrap_or_else(|| panic!("row not wrapped in colours: {row:?}")),
            TerminalMode::Plain => {
                assert!(!row.contains('\x1b'), "escape in plain row {row:?}");
                row
            }
        }
    }

    /// Parses the text back into module rows: `true` = dark, as a scanner would see it.
    fn parse(rows: &[String], mode: TerminalMode) -> Vec<Vec<bool>> {
        let mut grid = Vec::new();
        for row in rows {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in strip_colour(row, mode).chars() {
                let (t, b) = match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected char {other:?}"),
                };
                // Ink is dark in colour mode, light in plain mode.
                let dark = |ink: bool| match mode {
                    TerminalMode::Interactive => ink,
                    TerminalMode::Plain => !ink,
                };
                top.push(dark(t));
                bottom.push(dark(b));
            }
            grid.push(top);
            grid.push(bottom);
        }
        grid
    }

    #[test]
    fn half_block_text_parses_back_to_the_qrcode_matrix() {
        for payload in [SHORT, COMPLETE, LONG] {
            let code = encode(payload).expect("encodes");
            let w = code.width();
            let expected: Vec<Vec<bool>> = code
                .to_colors()
                .chunks(w)
                .map(|r| r.iter().map(|c| *c == Color::Dark).collect())
                .collect();
            for mode in MODES {
                let rows = qr_text(payload, mode).expect("renders");
                let grid = parse(&rows, mode);
                let size = w + 2 * QUIET_ZONE;
                assert_eq!(rows.len(), size.div_ceil(2));
                assert!(grid.iter().all(|r| r.len() == size));
                // Quiet zone: 4 light modules on every side.
                for (y, row) in grid.iter().enumerate().take(size) {
                    for (x, dark) in row.iter().enumerate() {
                        let inside = (QUIET_ZONE..QUIET_ZONE + w).contains(&x)
                            && (QUIET_ZONE..QUIET_ZONE + w).contains(&y);
                        if !inside {
                            assert!(!dark, "{mode:?}: quiet zone dark at {x},{y}");
                        }
                    }
                }
                let symbol: Vec<Vec<bool>> = grid
                    .iter()
                    .skip(QUIET_ZONE)
                    .take(w)
                    .map(|r| r.iter().skip(QUIET_ZONE).take(w).copied().collect())
                    .collect();
                assert_eq!(symbol, expected, "{mode:?} {payload}");
            }
        }
    }

    /// Rasterises the text as a terminal would show it: every module 4×4 pixels, ink in the
    /// foreground colour, the rest in the background colour of the mode's assumed terminal.
    fn rasterise(rows: &[String], mode: TerminalMode) -> (usize, usize, Vec<u8>) {
        const PX: usize = 4;
        const MARGIN: usize = 8; // a little terminal around the code
        let (ink, paper, terminal_bg) = match mode {
            // Black on white; the terminal around it could be anything: make it dark to prove
            // the code carries its own light background.
            TerminalMode::Interactive => (0u8, 255u8, 0u8),
            // Light-on-dark terminal: ink is light, background dark. The quiet zone is ink.
            TerminalMode::Plain => (255u8, 0u8, 0u8),
        };
        let cols = rows
            .iter()
            .map(|r| strip_colour(r, mode).chars().count())
            .max()
            .unwrap_or(0);
        let (w, h) = (cols * PX + 2 * MARGIN, rows.len() * 2 * PX + 2 * MARGIN);
        let mut img = vec![terminal_bg; w * h];
        for (ty, row) in rows.iter().enumerate() {
            for (x, c) in strip_colour(row, mode).chars().enumerate() {
                let (t, b) = match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    _ => (false, false),
                };
                for (half, on) in [(0, t), (1, b)] {
                    let v = if on { ink } else { paper };
                    for py in 0..PX {
                        for px in 0..PX {
                            let yy = MARGIN + (2 * ty + half) * PX + py;
                            let xx = MARGIN + x * PX + px;
                            img[yy * w + xx] = v;
                        }
                    }
                }
            }
        }
        (w, h, img)
    }

    fn decode(w: usize, h: usize, img: &[u8]) -> String {
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| img[y * w + x]);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "expected one QR code");
        grids[0].decode().expect("decodes").1
    }

    #[test]
    fn rendered_text_decodes_to_the_exact_payload() {
        for payload in [SHORT, COMPLETE, LONG] {
            for mode in MODES {
                let rows = qr_text(payload, mode).expect("renders");
                let (w, h, img) = rasterise(&rows, mode);
                assert_eq!(decode(w, h, &img), payload, "{mode:?}");
            }
        }
    }

    #[test]
    fn ec_level_is_m_when_small_and_l_when_that_keeps_it_in_80_columns() {
        let short = encode(SHORT).expect("encodes");
        assert_eq!(short.error_correction_level(), EcLevel::M);
        let complete = encode(COMPLETE).expect("encodes");
        assert_eq!(complete.error_correction_level(), EcLevel::M);
        assert!(complete.width() <= MAX_WIDTH_AT_M);
        let long = encode(LONG).expect("encodes");
        assert_eq!(long.error_correction_level(), EcLevel::L);
        for payload in [SHORT, COMPLETE, LONG] {
            let rows = qr_text(payload, TerminalMode::Plain).expect("renders");
            assert!(rows.iter().all(|r| r.chars().count() <= 80), "{payload}");
        }
    }

    #[test]
    fn a_payload_too_long_for_any_qr_code_is_an_error_not_a_panic() {
        let huge = "x".repeat(5000);
        assert!(matches!(
            qr_text(&huge, TerminalMode::Plain),
            Err(DisplayError::Unsupported(_))
        ));
    }
}
