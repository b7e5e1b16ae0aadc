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

pub(super) fn fit_qr(c: &CodeScreen, tier: Tier, ty: &Type, side: u32) -> Option<Fitted> {
    let owned = payloads(c, tier);
    let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
    qr::fit(&refs, side, ty.min_qr_scale, tier == Tier::Oled)
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
        let qr = fit_qr(c, tier, ty, sh.min(sw * 45 / 100));
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
        // the URL), fewer parts until it reaches a readable scale.
        for density in 0..=3u8 {
            let text_density = density.min(2);
            let mut pieces = parts.pieces(ty, sw, text_density, true);
            let text_h = column_height(&pieces, ty) + ty.gap;
            let room = sh.saturating_sub(text_h).min(sw);
            let qr = if density < 3 {
                fit_qr(c, tier, ty, room)
            } else {
                None
            };
            if qr.is_none() && density < 3 {
                continue;
            }
            if let Some(code) = qr {
                // After the title (density 0) or at the top.
                let at = if text_density == 0 { 2 } else { 0 };
                let at = at.min(pieces.len());
                pieces.insert(at, Piece::Gap(ty.gap));
                pieces.insert(at, Piece::Qr(code));
            }
            place(pieces, safe, true, ty, out);
            return;
        }
    }
}

/// Whether the OLED must alternate between a QR page and a URL page.
pub(super) fn oled_alternates(c: &CodeScreen, size: Size, _profile: &Profile) -> bool {
    let ty = type_of(Tier::Oled);
    let Some(qr) = fit_qr(c, Tier::Oled, &ty, size.height) else {
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
    let qr = fit_qr(c, Tier::Oled, ty, size.height);
    match qr {
        Some(code) if page == 0 => {
            let side = code.side();
            let col_x = side + ty.gap;
            let w = size.width.saturating_sub(col_x);
            let with_url = !oled_alternates(c, size, profile);
            let pieces = oled_column(c, ty, w, with_url);
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
            let pieces = if column_height(&pieces, ty) > size.height {
                oled_column(c, ty, w, true)
            } else {
                pieces
            };
            place(pieces, full, true, ty, out);
        }
    }
}
