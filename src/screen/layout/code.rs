//! The code screen: the text column at decreasing fullness beside or above the QR, and the
//! 128×64 OLED's pages.
//!
//! What is left out first when the column does not fit (docs/display.md, "What is left out"):
//! the provider's message, then the title (a renewed code still says so in its countdown), then
//! the long steps for the short ones, then the warning against code phishing, then the steps'
//! words (the URL and the code stay), then the "adding" and network lines. The URL, the code and
//! the countdown are never left out (RFC 8628 §3.3); the QR steps down only after the text.

use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::Rectangle;

use super::column::{Piece, code_lines, column_height, column_width, lines, place, spaced, to_i32};
use super::text::{Face, split_code, url_text, wrap_url};
use super::words::{Step, Words, ticker};
use super::{Item, Layout, Profile, Role, Tier, Type, face_for, type_of};
use crate::screen::CodeScreen;
use crate::screen::catalog::{Msg, Slot};
use crate::screen::fonts::{FontId, sanitize};
use crate::screen::qr::{self, Fitted};

/// Which steps sentence the column carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Steps {
    Long,
    Short,
    /// The URL and the code without words.
    Bare,
}

/// One fullness of the text column.
#[derive(Debug, Clone, Copy)]
struct Spec {
    title: bool,
    steps: Steps,
    warning: bool,
    message: bool,
    /// "Adding: <profile>" and, while retrying, "Connection lost. The code still works."
    notes: bool,
}

/// From the fullest column to the leanest (the order things are left out in).
const SPECS: [Spec; 6] = [
    Spec {
        title: true,
        steps: Steps::Long,
        warning: true,
        message: true,
        notes: true,
    },
    Spec {
        title: true,
        steps: Steps::Long,
        warning: true,
        message: false,
        notes: true,
    },
    Spec {
        title: false,
        steps: Steps::Long,
        warning: true,
        message: false,
        notes: true,
    },
    Spec {
        title: false,
        steps: Steps::Short,
        warning: true,
        message: false,
        notes: true,
    },
    Spec {
        title: false,
        steps: Steps::Short,
        warning: false,
        message: false,
        notes: true,
    },
    Spec {
        title: false,
        steps: Steps::Bare,
        warning: false,
        message: false,
        notes: true,
    },
];
const LEANEST: Spec = Spec {
    title: false,
    steps: Steps::Bare,
    warning: false,
    message: false,
    notes: false,
};

/// The code screen's content, ready to be cut into pieces at any width.
pub(super) struct CodeParts<'a> {
    c: &'a CodeScreen,
    words: Words<'a>,
    retrying: bool,
    /// The device name for the warning, when it has one and it can be drawn (else the
    /// generic sentence).
    device: Option<String>,
    /// The account profile being added, when it can be drawn.
    profile: Option<String>,
    message: Option<String>,
}

impl<'a> CodeParts<'a> {
    fn new(
        c: &'a CodeScreen,
        retrying: bool,
        profile: &'a Profile,
        small: Face,
        out: &mut Layout,
    ) -> CodeParts<'a> {
        let words = Words {
            lang: &profile.language,
            mono: profile.mono,
        };
        let outside = |text: Option<&str>, msg: Msg, what: &str, out: &mut Layout| {
            let text = text.map(sanitize).filter(|t| !t.is_empty())?;
            if words.can_draw(msg, &text, small) {
                Some(text)
            } else {
                out.omitted.push(format!("{what} {text:?}"));
                None
            }
        };
        let device = outside(
            profile.device_name.as_deref(),
            Msg::WarningDevice,
            "device name",
            out,
        );
        let profile_line = outside(c.profile.as_deref(), Msg::CodeAdding, "profile", out);
        let message = c.message.as_deref().map(sanitize).filter(|m| !m.is_empty());
        CodeParts {
            c,
            words,
            retrying,
            device,
            profile: profile_line,
            message,
        }
    }

    fn code(&self) -> &str {
        &self.c.user_code
    }

    fn url(&self) -> String {
        url_text(&self.c.verification_uri)
    }

    fn code_face(&self, ty: &Type, w: u32) -> Face {
        code_face(self.code(), ty, w)
    }

    /// The URL as lines: the largest face that fits it on one line, else the smallest, wrapped.
    fn url_piece(&self, ty: &Type, w: u32) -> Piece {
        let url = self.url();
        let face = ty
            .url
            .iter()
            .copied()
            .find(|f| f.covers(&url) && f.width(&url) <= w)
            .or_else(|| ty.url.last().copied().and_then(|f| face_for(&url, f)))
            .unwrap_or(Face::new(FontId::Tiny, 1));
        lines(wrap_url(&url, face, w), face, Role::Link)
    }

    /// The column's pieces for `w` px of width at fullness `spec`.
    fn pieces(&self, ty: &Type, w: u32, spec: Spec) -> Vec<Piece> {
        let words = self.words;
        let mut pieces = Vec::new();
        if spec.title {
            let (m, role) = if self.c.renewed {
                (Msg::CodeTitleRenewed, Role::Warn)
            } else {
                (Msg::CodeTitle, Role::Text)
            };
            pieces.extend(words.sentence(m, &[], ty.title, w, role));
            pieces.push(Piece::Gap(ty.gap * 2));
        }
        if spec.notes {
            if let Some(p) = &self.profile {
                pieces.extend(words.sentence(
                    Msg::CodeAdding,
                    &[(Slot::Profile, p)],
                    ty.body,
                    w,
                    Role::Text,
                ));
            }
        }
        // The steps: their words as paragraphs, the URL and the code as blocks where the
        // sentence puts them (word order is the language's).
        // A browser sign-in has no code: its own steps, and no warning about codes.
        let browser = self.code().is_empty();
        let steps = match (spec.steps, browser) {
            (Steps::Bare, _) => vec![Step::Url, Step::Code],
            (_, true) => words.steps(Msg::SigninSteps, ty.body, w, Role::Muted),
            (Steps::Long, false) => words.steps(Msg::CodeSteps, ty.body, w, Role::Muted),
            (Steps::Short, false) => words.steps(Msg::CodeStepsShort, ty.body, w, Role::Muted),
        };
        for step in steps {
            match step {
                Step::Words(p) => pieces.push(p),
                Step::Url => pieces.push(self.url_piece(ty, w)),
                Step::Code if !browser => {
                    pieces.push(code_lines(self.code(), self.code_face(ty, w), w))
                }
                Step::Code => {}
            }
        }
        if spec.notes && self.retrying {
            pieces.extend(words.sentence(Msg::RetryingCode, &[], ty.small, w, Role::Warn));
        }
        pieces.push(ticker(words, ty.body, true));
        if spec.warning && !browser {
            let warning = match &self.device {
                Some(d) => words.sentence(
                    Msg::WarningDevice,
                    &[(Slot::Device, d)],
                    ty.small,
                    w,
                    Role::Warn,
                ),
                None => None,
            };
            pieces.extend(
                warning.or_else(|| words.sentence(Msg::Warning, &[], ty.small, w, Role::Warn)),
            );
        }
        if spec.message {
            if let Some(m) = &self.message {
                if let Some(p) = words.outside(m, ty.small, w, Role::Muted) {
                    // Whole or not at all: a message cut short would mislead.
                    if !p.lines_over(6) {
                        pieces.push(p);
                    }
                }
            }
        }
        spaced(pieces, ty.gap)
    }

    /// The fullest column that fits `w` × `h`, else the leanest.
    fn fitted(&self, ty: &Type, w: u32, h: u32) -> Vec<Piece> {
        for spec in SPECS {
            let pieces = self.pieces(ty, w, spec);
            if column_height(&pieces, ty) <= h && column_width(&pieces) <= w {
                return pieces;
            }
        }
        self.pieces(ty, w, LEANEST)
    }
}

/// The code's face: the largest of the tier's that shows it on one line in `w` px, else on two
/// (split after a hyphen, which stays), else the smallest.
fn code_face(code: &str, ty: &Type, w: u32) -> Face {
    let faces = || ty.code.iter().map(|(f, s)| Face::new(*f, *s));
    faces()
        .find(|f| f.width(code) <= w)
        .or_else(|| faces().find(|f| split_code(code, *f, w).len() <= 2))
        .or_else(|| faces().next_back())
        .unwrap_or(Face::new(FontId::Code16, 1))
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
    retrying: Option<()>,
    tier: Tier,
    ty: &Type,
    page: u8,
    profile: &Profile,
    out: &mut Layout,
) {
    let parts = CodeParts::new(c, retrying.is_some(), profile, ty.small, out);
    if tier == Tier::Oled {
        return oled_code_screen(&parts, ty, page, profile, out);
    }
    let safe = out.safe;
    let (sw, sh) = (safe.size.width, safe.size.height);
    if sw * 10 < sh * 12 {
        return stacked(c, &parts, tier, ty, out);
    }
    // Landscape: text left, QR right, unless stacking (QR above, text below) shows the code
    // larger with the same QR payload, as on a 320×240 panel. TVs have room for both side by
    // side: only the small panels try the other arrangement (a layout costs a millisecond).
    if !matches!(tier, Tier::Tiny | Tier::Small) {
        return beside(c, &parts, tier, ty, out);
    }
    let mut side = out.clone();
    beside(c, &parts, tier, ty, &mut side);
    let mut stack = out.clone();
    stacked(c, &parts, tier, ty, &mut stack);
    let code_h = |l: &Layout| l.code.iter().map(|r| r.size.height).max().unwrap_or(0);
    let payload = |l: &Layout| l.qr().map(|(_, q)| q.payload.clone());
    *out = if code_h(&stack) > code_h(&side) && payload(&stack) == payload(&side) {
        stack
    } else {
        side
    };
}

/// Text left, QR right. The QR gets up to 45% of the width, less where the code's largest face
/// needs the room (only while it still carries the first payload).
fn beside(c: &CodeScreen, parts: &CodeParts, tier: Tier, ty: &Type, out: &mut Layout) {
    let safe = out.safe;
    let (sw, sh) = (safe.size.width, safe.size.height);
    let cap = sh.min(sw * 45 / 100);
    let attempts = qr_attempts(c, tier, ty);
    let first: Vec<_> = attempts.iter().filter(|a| a.0 == c.qr_payload).collect();
    let qr = ty
        .code
        .iter()
        .find_map(|(f, s)| {
            let need = Face::new(*f, *s).width(parts.code());
            let side = cap.min(sw.saturating_sub(need + ty.gap * 2));
            first.iter().find_map(|a| fit_qr(a, tier, side))
        })
        .or_else(|| fit_best(c, tier, ty, cap));
    let qr_w = qr.as_ref().map_or(0, |q| q.side() + ty.gap * 2);
    let text_w = sw.saturating_sub(qr_w);
    let text_area = Rectangle::new(safe.top_left, Size::new(text_w, sh));
    place(parts.fitted(ty, text_w, sh), text_area, false, ty, out);
    if let Some(code) = qr {
        let qx = safe.top_left.x + to_i32(sw - code.side());
        let qy = safe.top_left.y + to_i32((sh - code.side()) / 2);
        out.items.push(Item::Qr {
            origin: Point::new(qx, qy),
            code,
        });
    }
}

/// Stacked: the QR on top, the text under it gets what is left. For each QR attempt, a leaner
/// column until it fits; text is thinned before the QR gets a smaller payload or module. No
/// attempt fits: text only.
fn stacked(c: &CodeScreen, parts: &CodeParts, tier: Tier, ty: &Type, out: &mut Layout) {
    let safe = out.safe;
    let (sw, sh) = (safe.size.width, safe.size.height);
    for attempt in qr_attempts(c, tier, ty) {
        for spec in SPECS.into_iter().chain([LEANEST]) {
            let mut pieces = parts.pieces(ty, sw, spec);
            if column_width(&pieces) > sw {
                continue;
            }
            let text_h = column_height(&pieces, ty) + ty.gap;
            let room = sh.saturating_sub(text_h).min(sw);
            if let Some(code) = fit_qr(&attempt, tier, room) {
                // After the title (when there is one) or at the top.
                let at = if spec.title { 2 } else { 0 }.min(pieces.len());
                pieces.insert(at, Piece::Gap(ty.gap));
                pieces.insert(at, Piece::Qr(code));
                place(pieces, safe, true, ty, out);
                return;
            }
        }
    }
    place(parts.fitted(ty, sw, sh), safe, true, ty, out);
}

/// Whether the OLED must alternate between a QR page and a URL page.
pub(super) fn oled_alternates(c: &CodeScreen, size: Size, profile: &Profile) -> bool {
    let ty = type_of(Tier::Oled, 100);
    let Some(qr) = fit_best(c, Tier::Oled, &ty, size.height) else {
        return false;
    };
    let w = size.width.saturating_sub(qr.side() + ty.gap);
    let words = Words {
        lang: &profile.language,
        mono: profile.mono,
    };
    let pieces = oled_column(c, words, &ty, w, true);
    column_height(&pieces, &ty) > size.height || column_width(&pieces) > w
}

/// The OLED's text column: the code (split to fit), optionally the URL, and the countdown.
fn oled_column(c: &CodeScreen, words: Words, ty: &Type, w: u32, with_url: bool) -> Vec<Piece> {
    let mut pieces = Vec::new();
    if with_url {
        let url = url_text(&c.verification_uri);
        let face = face_for(&url, ty.body).unwrap_or(ty.body);
        pieces.push(lines(wrap_url(&url, face, w), face, Role::Link));
    }
    if !c.user_code.is_empty() {
        pieces.push(code_lines(&c.user_code, code_face(&c.user_code, ty, w), w));
    }
    pieces.push(ticker(words, ty.body, true));
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

fn oled_code_screen(parts: &CodeParts, ty: &Type, page: u8, profile: &Profile, out: &mut Layout) {
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
            let pieces = without_ticker_if_tall(
                oled_column(c, parts.words, ty, w, with_url),
                ty,
                size.height,
            );
            out.items.push(Item::Qr {
                origin: Point::new(0, to_i32((size.height - side) / 2)),
                code,
            });
            let area = Rectangle::new(Point::new(to_i32(col_x), 0), Size::new(w, size.height));
            place(pieces, area, true, ty, out);
        }
        _ => {
            // The URL page (or no QR fits at all): the short steps' words where they fit
            // ("Go to" above the URL), the URL, the code, the countdown.
            let w = size.width;
            let mut pieces = Vec::new();
            for step in parts
                .words
                .steps(Msg::CodeStepsShort, ty.body, w, Role::Muted)
            {
                match step {
                    Step::Words(p) => pieces.push(p),
                    Step::Url => {
                        pieces.extend(oled_column(c, parts.words, ty, w, true).into_iter().take(1))
                    }
                    Step::Code if !c.user_code.is_empty() => {
                        pieces.push(code_lines(&c.user_code, Face::new(FontId::Code16, 1), w))
                    }
                    Step::Code => {}
                }
            }
            pieces.push(ticker(parts.words, ty.body, true));
            let all = spaced(pieces, ty.gap);
            let pieces = if column_height(&all, ty) <= size.height {
                all
            } else {
                without_ticker_if_tall(oled_column(c, parts.words, ty, w, true), ty, size.height)
            };
            place(pieces, full, true, ty, out);
        }
    }
}
