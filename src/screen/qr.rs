//! QR codes for pixel screens: which payload, which error-correction level and which integer
//! module scale fit a given square, as plain data the layout places and `draw.rs` paints.
//!
//! Owns the fitting rules; the terminal's text QR (`terminal/qr_text.rs`) has its own. Rules:
//! - integer pixels per module only (a fractional scale blurs module edges and breaks decoding);
//! - a quiet zone of 4 modules (ISO/IEC 18004), 3 only when the caller allows it (128×64 OLEDs,
//!   where a version-2 code at 2 px/module with 4 would not fit in 64 rows);
//! - the highest EC level (H, Q, M, L) whose symbol still gets at least `min_scale` px per
//!   module: spare room buys damage and glare tolerance, never smaller modules;
//! - payloads are tried in order (the complete URI first, then the short one).

use qrcode::{Color, EcLevel, QrCode};

/// A fitted QR symbol.
#[derive(Clone, PartialEq, Eq)]
pub struct Fitted {
    /// What the symbol carries.
    pub payload: String,
    pub ec: EcLevel,
    /// Modules per side, without the quiet zone.
    pub modules: u32,
    /// Quiet zone, in modules, on each side.
    pub quiet: u32,
    /// Pixels per module.
    pub scale: u32,
    /// Row-major, `modules × modules`, `true` = dark.
    pub dark: Vec<bool>,
}

impl std::fmt::Debug for Fitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fitted")
            .field("payload", &self.payload)
            .field("ec", &self.ec)
            .field("modules", &self.modules)
            .field("quiet", &self.quiet)
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

impl Fitted {
    /// Side length in pixels, quiet zone included.
    pub fn side(&self) -> u32 {
        (self.modules + 2 * self.quiet) * self.scale
    }

    /// Whether module (x, y) (symbol coordinates, no quiet zone) is dark.
    pub fn is_dark(&self, x: u32, y: u32) -> bool {
        if x >= self.modules || y >= self.modules {
            return false;
        }
        let i = (y as usize) * (self.modules as usize) + x as usize;
        self.dark.get(i).copied().unwrap_or(false)
    }
}

/// EC levels from the most to the least redundant.
const LEVELS: [EcLevel; 4] = [EcLevel::H, EcLevel::Q, EcLevel::M, EcLevel::L];

/// Longest payload encoded at all (a version-40 symbol holds ~2.9 kB; a screen shows far less).
pub const MAX_PAYLOAD: usize = 1024;

/// Symbols encoded lately, newest last: a layout tries several sizes, and the screen is laid out
/// again on every state change, while the code (and so the symbol) rarely changes. Encoding
/// with its 8 mask evaluations is the slowest step of a full draw.
type Encoded = (String, EcLevel, Option<(u32, Vec<bool>)>);
const MEMO: usize = 8;
thread_local! {
    static RECENT: std::cell::RefCell<Vec<Encoded>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn encode(payload: &str, ec: EcLevel) -> Option<(u32, Vec<bool>)> {
    if payload.is_empty() || payload.len() > MAX_PAYLOAD {
        return None;
    }
    let hit = RECENT.with(|r| {
        r.borrow()
            .iter()
            .find(|(p, e, _)| p == payload && *e == ec)
            .map(|(_, _, v)| v.clone())
    });
    if let Some(v) = hit {
        return v;
    }
    let v = encode_uncached(payload, ec);
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() >= MEMO {
            r.remove(0);
        }
        r.push((payload.to_string(), ec, v.clone()));
    });
    v
}

fn encode_uncached(payload: &str, ec: EcLevel) -> Option<(u32, Vec<bool>)> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), ec).ok()?;
    let modules = u32::try_from(code.width()).ok()?;
    let dark = code.to_colors().iter().map(|c| *c == Color::Dark).collect();
    Some((modules, dark))
}

/// The best symbol for the first payload that fits a `side`-pixel square at ≥ `min_scale` px
/// per module, or `None` when none fits.
pub fn fit(payloads: &[&str], side: u32, min_scale: u32, allow_quiet3: bool) -> Option<Fitted> {
    let min_scale = min_scale.max(1);
    let quiets: &[u32] = if allow_quiet3 { &[4, 3] } else { &[4] };
    for payload in payloads {
        for &quiet in quiets {
            for ec in LEVELS {
                let Some((modules, dark)) = encode(payload, ec) else {
                    continue;
                };
                // Larger levels only make bigger symbols: stop as soon as one cannot fit.
                let scale = side / (modules + 2 * quiet);
                if scale >= min_scale {
                    return Some(Fitted {
                        payload: (*payload).to_string(),
                        ec,
                        modules,
                        quiet,
                        scale,
                        dark,
                    });
                }
            }
        }
    }
    None
}

/// `uri` with its scheme and host upper-cased (both are case-insensitive, RFC 3986 §3.1, §3.2.2),
/// so a QR encoder can put them in the denser alphanumeric mode. Used only as a last resort on
/// the smallest screens; the path keeps its case.
pub fn upper_scheme_and_host(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(host_end);
    Some(format!(
        "{}://{}{}",
        scheme.to_ascii_uppercase(),
        host.to_ascii_uppercase(),
        path
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETE: &str = "https://example.com/device?user_code=WDJB-MJHT";

    #[test]
    fn more_error_correction_when_there_is_room() {
        let big = fit(&[COMPLETE], 800, 12, false).unwrap();
        assert_eq!(big.ec, EcLevel::H);
        assert!(big.scale >= 12);
        let small = fit(&[COMPLETE], 130, 3, false).unwrap();
        assert!(small.scale >= 3);
        assert!(small.side() <= 130);
        let tiny = fit(&[COMPLETE], 120, 3, false).unwrap();
        assert!(matches!(tiny.ec, EcLevel::M | EcLevel::L), "{:?}", tiny.ec);
        assert_eq!(small.quiet, 4);
    }

    #[test]
    fn falls_back_to_the_next_payload_and_to_quiet_three() {
        // 64 px: the complete URI cannot fit at 2 px/module; the short one can, with 3 quiet.
        let uri = "https://example.com/device";
        let f = fit(&[COMPLETE, uri], 64, 2, true).unwrap();
        assert_eq!(f.payload, uri);
        assert_eq!(f.quiet, 3);
        assert_eq!(f.scale, 2);
        assert!(f.side() <= 64);
        assert!(fit(&[COMPLETE], 64, 2, false).is_none());
        assert!(fit(&[""], 500, 1, false).is_none());
    }

    #[test]
    fn upper_casing_keeps_the_path() {
        assert_eq!(
            upper_scheme_and_host("https://microsoft.com/devicelogin?x=a").as_deref(),
            Some("HTTPS://MICROSOFT.COM/devicelogin?x=a")
        );
        assert_eq!(
            upper_scheme_and_host("https://a.b").as_deref(),
            Some("HTTPS://A.B")
        );
        assert_eq!(upper_scheme_and_host("nope"), None);
    }
}
