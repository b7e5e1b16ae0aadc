//! The code screen: the text column at decreasing densities beside or above the QR, and the
//! 128×64 OLED's pages.

use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::Rectangle;

use super::column::{Piece, code_lines, column_height, lines, place, spaced, to_i32};
use super::text::{split_code, url_text, width, wrap, wrap_url};
use super::{Item, Layout, Profile, Role, Tier, Type, type_of};
use crate::screen::CodeScreen;
use crate::screen::fonts::{FontId, drawable};
use crate::screen::qr::{self, Fitted};

/// Pieces of the code text column at `density` (0 = everything, higher = fewer parts).
pub(super) struct CodeParts<'a> {
    c: &'a CodeScreen,
    reason: Option<&'a str>,
}

impl CodeParts<'_> {
    fn title(&self) -> &'static str {
        if self.c.renewed {
            "New code: the last one expired"
        } else {
            "Pair this device"
        }
    }

    /// The column's pieces for `w` px of width, or `None` when the URL or code cannot fit.
    fn pieces(&self, ty: &Type, w: u32, density: u8, center: bool) -> Vec<Piece> {
        let mut pieces = Vec::new();
        if density == 0 {
            let role = if self.c.renewed {
                Role::Warn
            } else {
                Role::Text
            };
            pieces.push(lines(wrap(self.title(), ty.title, 1, w, 2), ty.title, role));
            pieces.push(Piece::Gap(ty.gap * 2));
        }
        if density <= 1 {
            let prompt = if center {
                "Go to"
            } else {
                "On your phone or computer, go to"
            };
            pieces.push(lines(wrap(prompt, ty.body, 1, w, 2), ty.body, Role::Muted));
        }
        // URL: the largest face that fits on one line, else the smallest, wrapped.
        let url = url_text(&self.c.verification_uri);
        let url_font = ty
            .url
            .iter()
            .copied()
            .find(|f| width(*f, 1, &url) <= w)
            .or_else(|| ty.url.last().copied())
            .unwrap_or(FontId::Tiny);
        pieces.push(lines(wrap_url(&url, url_font, 1, w), url_font, Role::Link));
        if density <= 1 {
            pieces.push(lines(
                wrap("and enter the code", ty.body, 1, w, 2),
                ty.body,
                Role::Muted,
            ));
        }
        // Code: the largest face that fits on one line, else two lines of the largest that
        // fits that way.
        let code = drawable(&self.c.user_code);
        let (font, scale) = ty
            .code
            .iter()
            .copied()
            .find(|(f, s)| width(*f, *s, &code) <= w)
            .or_else(|| {
                ty.code
                    .iter()
                    .copied()
                    .find(|(f, s)| split_code(&code, *f, *s, w).len() <= 2)
            })
            .or_else(|| ty.code.last().copied())
            .unwrap_or((FontId::Code16, 1));
        pieces.push(code_lines(&code, font, scale, w));
        if let Some(reason) = self.reason {
            pieces.push(lines(
                wrap(
                    &format!("Network trouble: {}", drawable(reason)),
                    ty.small,
                    1,
                    w,
                    2,
                ),
                ty.small,
                Role::Warn,
            ));
        }
        pieces.push(Piece::Ticker {
            font: ty.small,
            scale: 1,
            bar: true,
        });
        if density == 0 {
            if let Some(m) = &self.c.message {
                pieces.push(lines(
                    wrap(&drawable(m), ty.small, 1, w, 4),
                    ty.small,
                    Role::Muted,
                ));
            }
        }
        spaced(pieces, ty.gap)
    }
}

pub(super) fn payloads(c: &CodeScreen, tier: Tier) -> Vec<String> {
    let mut p = vec![c.qr_payload.clone()];
    if c.verification_uri != c.qr_payload {
        p.push(c.verification_uri.clone());
    }
    if tier == Tier::Oled {
        if let Some(upper) = qr::upper_scheme_and_host(&c.verification_uri) {
            p.push(upper);
        }
    }
    p
}

/// The module size under which no screen goes for its QR: a phone still reads 4 px modules from
/// arm's length on any panel, and the small tiers already ask less.
const QR_FLOOR_SCALE: u32 = 4;

/// The QR attempts of the payload rule (docs/display.md), best first: each payload in turn
/// (the complete URI first), at the tier's comfortable module size, then at the floor. A payload
/// comes before any module size, so a screen that has room for the complete URI at the floor
/// never falls back to the plain URI; the floor rises with the tier only up to
/// [`QR_FLOOR_SCALE`], so a bigger screen never carries a smaller payload.
fn qr_attempts(c: &CodeScreen, tier: Tier, ty: &Type) -> Vec<(String, u32)> {
    let floor = ty.min_qr_scale.min(QR_FLOOR_SCALE);
    let mut attempts = Vec::new();
    for payload in payloads(c, tier) {
        attempts.push((payload.clone(), ty.min_qr_scale));
        if floor < ty.min_qr_scale {
            attempts.push((payload, floor));
        }
    }
    attempts
}

fn fit_qr(attempt: &(String, u32), tier: Tier, side: u32) -> Option<Fitted> {
    qr::fit(&[attempt.0.as_str()], side, attempt.1, tier == Tier::Oled)
}

/// The first attempt that fits a square of `side` px.
fn fit_best(c: &CodeScreen, tier: Tier, ty: &Type, side: u32) -> Option<Fitted> {
    qr_attempts(c, tier, ty)
        .iter()
        .find_map(|a| fit_qr(a, tier, side))
}

pub(super) fn code_screen(
    c: &CodeScreen,
    reason: Option<&String>,
    tier: Tier,
    ty: &Type,
    page: u8,
    profile: &Profile,
    out: &mut Layout,
) {
    let parts = CodeParts {
        c,
        reason: reason.map(String::as_str),
    };
    if tier == Tier::Oled {
        return oled_code_screen(&parts, ty, page, profile, out);
    }
    let safe = out.safe;
    let (sw, sh) = (safe.size.width, safe.size.height);
    let landscape = sw * 10 >= sh * 12;
    if landscape {
        // Text left, QR right. The QR column gets up to 45% of the width.
        let qr = fit_best(c, tier, ty, sh.min(sw * 45 / 100));
        let qr_w = qr.as_ref().map_or(0, |q| q.side() + ty.gap * 2);
        let text_w = sw.saturating_sub(qr_w);
        let text_area = Rectangle::new(safe.top_left, Size::new(text_w, sh));
        let mut chosen = None;
        for density in 0..=2u8 {
            let pieces = parts.pieces(ty, text_w, density, false);
            if column_height(&pieces, ty) <= sh || density == 2 {
                chosen = Some(pieces);
                break;
            }
        }
        if let Some(pieces) = chosen {
            place(pieces, text_area, false, ty, out);
        }
        if let Some(code) = qr {
            let qx = safe.top_left.x + to_i32(sw - code.side());
            let qy = safe.top_left.y + to_i32((sh - code.side()) / 2);
            out.items.push(Item::Qr {
                origin: Point::new(qx, qy),
                code,
            });
        }
    } else {
        // Stacked: text pieces first, the QR gets the height left over (between the title and
        // the URL). For each QR attempt, fewer text parts until it fits; text is thinned before
        // the QR gets a smaller payload or module. No attempt fits: text only.
        for attempt in qr_attempts(c, tier, ty) {
            for density in 0..=2u8 {
                let mut pieces = parts.pieces(ty, sw, density, true);
                let text_h = column_height(&pieces, ty) + ty.gap;
                let room = sh.saturating_sub(text_h).min(sw);
                if let Some(code) = fit_qr(&attempt, tier, room) {
                    // After the title (density 0) or at the top.
                    let at = if density == 0 { 2 } else { 0 };
                    let at = at.min(pieces.len());
                    pieces.insert(at, Piece::Gap(ty.gap));
                    pieces.insert(at, Piece::Qr(code));
                    place(pieces, safe, true, ty, out);
                    return;
                }
            }
        }
        place(parts.pieces(ty, sw, 2, true), safe, true, ty, out);
    }
}

/// Whether the OLED must alternate between a QR page and a URL page.
pub(super) fn oled_alternates(c: &CodeScreen, size: Size, _profile: &Profile) -> bool {
    let ty = type_of(Tier::Oled);
    let Some(qr) = fit_best(c, Tier::Oled, &ty, size.height) else {
        return false;
    };
    let w = size.width.saturating_sub(qr.side() + ty.gap);
    let pieces = oled_column(c, &ty, w, true);
    column_height(&pieces, &ty) > size.height
}

/// The OLED's text column: the code (split to fit), optionally the URL, and the countdown.
pub(super) fn oled_column(c: &CodeScreen, ty: &Type, w: u32, with_url: bool) -> Vec<Piece> {
    let code = drawable(&c.user_code);
    let (font, scale) = ty.code.first().copied().unwrap_or((FontId::Code16, 1));
    let mut pieces = Vec::new();
    if with_url {
        let url = url_text(&c.verification_uri);
        pieces.push(lines(wrap_url(&url, ty.body, 1, w), ty.body, Role::Link));
    }
    pieces.push(code_lines(&code, font, scale, w));
    pieces.push(Piece::Ticker {
        font: ty.small,
        scale: 1,
        bar: true,
    });
    spaced(pieces, ty.gap)
}

/// `pieces`, without the countdown when they are taller than `height`: a long URL or a code
/// split over two lines leaves no room for it, and the URL and the code are what the person needs.
fn without_ticker_if_tall(pieces: Vec<Piece>, ty: &Type, height: u32) -> Vec<Piece> {
    if column_height(&pieces, ty) <= height {
        return pieces;
    }
    let kept = pieces
        .into_iter()
        .filter(|p| !matches!(p, Piece::Ticker { .. } | Piece::Gap(_)))
        .collect();
    spaced(kept, ty.gap)
}

pub(super) fn oled_code_screen(
    parts: &CodeParts,
    ty: &Type,
    page: u8,
    profile: &Profile,
    out: &mut Layout,
) {
    let c = parts.c;
    let size = out.size;
    let full = Rectangle::new(Point::zero(), size);
    let qr = fit_best(c, Tier::Oled, ty, size.height);
    match qr {
        Some(code) if page == 0 => {
            let side = code.side();
            let col_x = side + ty.gap;
            let w = size.width.saturating_sub(col_x);
            let with_url = !oled_alternates(c, size, profile);
            let pieces = without_ticker_if_tall(oled_column(c, ty, w, with_url), ty, size.height);
            out.items.push(Item::Qr {
                origin: Point::new(0, to_i32((size.height - side) / 2)),
                code,
            });
            let area = Rectangle::new(Point::new(to_i32(col_x), 0), Size::new(w, size.height));
            place(pieces, area, true, ty, out);
        }
        _ => {
            // The URL page (or no QR fits at all): "Go to", the URL, the code, the countdown.
            let w = size.width;
            let mut pieces = vec![lines(vec!["Go to".to_string()], ty.body, Role::Muted)];
            pieces.extend(oled_column(c, ty, w, true));
            let pieces = spaced(pieces, ty.gap);
            let pieces = if column_height(&pieces, ty) <= size.height {
                pieces
            } else {
                without_ticker_if_tall(oled_column(c, ty, w, true), ty, size.height)
            };
            place(pieces, full, true, ty, out);
        }
    }
}
