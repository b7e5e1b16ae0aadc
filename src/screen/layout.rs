//! Where everything goes on a pixel screen: a pure function from a [`View`], a display size and a
//! [`Profile`] to a [`Layout`] (text lines, the QR symbol, fills, and the countdown slot).
//!
//! Owns the arrangement rules: the size tiers (128×64 OLED, small SPI panels, 720p and 1080p
//! TVs; 4K draws the 1080p layout at 2× zoom), landscape (text left, QR right) versus portrait or
//! square (stacked), the title-safe margin, which parts are dropped when space runs out (the URL,
//! the user code and the countdown never are: RFC 8628 §3.3), and the countdown slot. It does not
//! draw (`draw.rs`), does not know pixel formats or devices (the backends), and reads no clock:
//! the time left comes in the view.
//!
//! A layout never depends on the time left, except for the OLED page (see [`page_of`]), so a
//! backend can keep it for the life of a code and redraw only the [`Ticker`] each second: that
//! rectangle holds the countdown text and the progress bar, and overlaps nothing else, so a
//! countdown tick cannot touch the QR.

use embedded_graphics::prelude::{Point, Size};
use embedded_graphics::primitives::Rectangle;

use super::fonts::{FontId, drawable};
use super::qr::{self, Fitted};
use super::{CodeScreen, View};

/// What a board or config says about the display beyond its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Profile {
    /// Margin kept free on every side, in percent of the width/height (TV overscan: 5).
    pub safe_percent: u32,
    /// One bit per pixel (SSD1306): no colours, no anti-aliasing.
    pub mono: bool,
}

/// The colour role of a drawn part; `draw.rs` maps roles to colours per display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Background,
    Text,
    Muted,
    /// The user code.
    Code,
    /// The verification URL.
    Link,
    /// Light modules and quiet zone of the QR.
    QrLight,
    QrDark,
    BarTrack,
    BarFill,
    Good,
    Bad,
    Warn,
}

/// One line of text, top-left anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub origin: Point,
    /// Already [`drawable`].
    pub text: String,
    pub font: FontId,
    /// Integer pixel scale of the face.
    pub scale: u32,
    pub role: Role,
}

impl Text {
    /// The box the line may draw in: advance width × (ascent + descent), scaled.
    pub fn rect(&self) -> Rectangle {
        Rectangle::new(
            self.origin,
            Size::new(
                self.font.width(&self.text) * self.scale,
                self.font.height() * self.scale,
            ),
        )
    }
}

/// A drawn part that does not change while the layout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Fill {
        rect: Rectangle,
        role: Role,
    },
    Text(Text),
    /// The QR symbol with its quiet zone, top-left at `origin`.
    Qr {
        origin: Point,
        code: Fitted,
    },
}

impl Item {
    pub fn rect(&self) -> Rectangle {
        match self {
            Item::Fill { rect, .. } => *rect,
            Item::Text(t) => t.rect(),
            Item::Qr { origin, code } => {
                Rectangle::new(*origin, Size::new(code.side(), code.side()))
            }
        }
    }
}

/// Horizontal alignment of the countdown text inside its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
}

/// The region redrawn on every countdown tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticker {
    /// Everything a tick may touch; cleared to the background first.
    pub rect: Rectangle,
    /// Top-left of the text line; the text is aligned inside `rect`'s width.
    pub text_y: i32,
    pub font: FontId,
    pub scale: u32,
    pub align: Align,
    /// The progress bar (track), when there is a lifetime to show.
    pub bar: Option<Rectangle>,
}

/// The dynamic content of the [`Ticker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub text: String,
    pub role: Role,
    /// Bar fill in 1/1000 of the track.
    pub permille: u32,
}

/// A whole screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Logical size the coordinates below are in (the display size divided by `zoom`).
    pub size: Size,
    /// Every coordinate is multiplied by this when drawn (2 on 4K screens).
    pub zoom: u32,
    /// The title-safe area (equal to the screen when there is no margin).
    pub safe: Rectangle,
    pub items: Vec<Item>,
    pub ticker: Option<Ticker>,
    /// The rectangle(s) of the user code lines (for tests and docs), empty when none shown.
    pub code: Vec<Rectangle>,
}

impl Layout {
    /// The QR symbol, if this layout shows one.
    pub fn qr(&self) -> Option<(Point, &Fitted)> {
        self.items.iter().find_map(|i| match i {
            Item::Qr { origin, code } => Some((*origin, code)),
            _ => None,
        })
    }

    /// The text lines, in drawing order.
    pub fn texts(&self) -> impl Iterator<Item = &Text> {
        self.items.iter().filter_map(|i| match i {
            Item::Text(t) => Some(t),
            _ => None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Tiers: fonts and spacing per display class.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// 128×64 and similar: monochrome OLEDs.
    Oled,
    /// Short side under 300: 240×240, 320×240.
    Tiny,
    /// Short side under 400: 480×320.
    Small,
    /// Short side under 900: 720p.
    Medium,
    /// 1080p and up.
    Large,
}

struct Type {
    title: FontId,
    body: FontId,
    small: FontId,
    url: &'static [FontId],
    code: &'static [(FontId, u32)],
    gap: u32,
    /// Smallest QR module, in px, a phone reads at this screen's viewing distance.
    min_qr_scale: u32,
    bar: u32,
    /// Margin kept inside the panel edge even without a title-safe margin.
    edge: u32,
}

fn tier_of(size: Size) -> Tier {
    let short = size.width.min(size.height);
    if short < 100 {
        Tier::Oled
    } else if short < 300 {
        Tier::Tiny
    } else if short < 400 {
        Tier::Small
    } else if short < 900 {
        Tier::Medium
    } else {
        Tier::Large
    }
}

fn type_of(tier: Tier) -> Type {
    use FontId::*;
    match tier {
        Tier::Oled => Type {
            title: Tiny,
            body: Tiny,
            small: Tiny,
            url: &[Tiny],
            code: &[(Code16, 1)],
            gap: 2,
            min_qr_scale: 2,
            bar: 3,
            edge: 0,
        },
        Tier::Tiny => Type {
            title: Bold14,
            body: Regular11,
            small: Regular11,
            url: &[Bold14, Bold11, Regular11],
            code: &[(Code33, 1), (Code24, 1), (Code16, 1)],
            gap: 4,
            min_qr_scale: 3,
            bar: 6,
            edge: 4,
        },
        Tier::Small => Type {
            title: Bold20,
            body: Regular14,
            small: Regular11,
            url: &[Bold20, Bold14, Bold11],
            code: &[(Code33, 1), (Code24, 1), (Code16, 1)],
            gap: 6,
            min_qr_scale: 4,
            bar: 8,
            edge: 6,
        },
        Tier::Medium => Type {
            title: Bold30,
            body: Regular20,
            small: Regular20,
            url: &[Bold30, Bold20, Bold14],
            code: &[(Code53, 1), (Code33, 1), (Code24, 1)],
            gap: 12,
            min_qr_scale: 8,
            bar: 12,
            edge: 12,
        },
        Tier::Large => Type {
            title: Bold42,
            body: Regular30,
            small: Regular20,
            url: &[Bold42, Bold30, Bold20],
            code: &[(Code53, 2), (Code33, 2), (Code53, 1), (Code33, 1)],
            gap: 18,
            min_qr_scale: 12,
            bar: 16,
            edge: 16,
        },
    }
}

/// Integer zoom: 4K (and larger) screens draw the 1080p layout with every pixel doubled.
fn zoom_of(size: Size) -> u32 {
    (size.width.min(size.height) / 1080).clamp(1, 4)
}

// ---------------------------------------------------------------------------------------------
// Text helpers.
// ---------------------------------------------------------------------------------------------

fn width(font: FontId, scale: u32, text: &str) -> u32 {
    font.width(text) * scale
}

fn line_height(font: FontId, scale: u32) -> u32 {
    font.height() * scale
}

/// Greedy word wrap to `max` px; words longer than a line are cut anywhere. At most `lines`
/// lines; a cut last line ends in "...".
fn wrap(text: &str, font: FontId, scale: u32, max: u32, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if width(font, scale, &candidate) <= max {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        // The word alone: cut it where it overflows.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if width(font, scale, &piece) > max {
                piece.pop();
                if !piece.is_empty() {
                    out.push(std::mem::take(&mut piece));
                }
                piece.push(c);
            }
        }
        line = piece;
    }
    if !line.is_empty() {
        out.push(line);
    }
    if out.len() > lines {
        out.truncate(lines);
        if let Some(last) = out.last_mut() {
            ellipsize(last, font, scale, max);
        }
    }
    out
}

/// Cuts `line` until `line + "..."` fits `max`.
fn ellipsize(line: &mut String, font: FontId, scale: u32, max: u32) {
    while !line.is_empty() && width(font, scale, &format!("{line}...")) > max {
        line.pop();
    }
    line.push_str("...");
}

/// A URL as a person types it: without `https://` and a trailing slash.
fn url_text(uri: &str) -> String {
    let shown = uri.strip_prefix("https://").unwrap_or(uri);
    let shown = shown.strip_suffix('/').unwrap_or(shown);
    drawable(shown)
}

/// Splits a URL into lines of at most `max` px, preferring breaks before `/`, `?` and `&`.
fn wrap_url(url: &str, font: FontId, scale: u32, max: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = url;
    while !rest.is_empty() {
        if width(font, scale, rest) <= max {
            out.push(rest.to_string());
            break;
        }
        // The longest prefix that fits, then back off to a separator when there is one.
        let mut fit = 0;
        for (i, c) in rest.char_indices() {
            let end = i + c.len_utf8();
            if width(font, scale, rest.get(..end).unwrap_or(rest)) > max {
                break;
            }
            fit = end;
        }
        if fit == 0 {
            // Not even one character fits: give up rather than loop.
            out.push(rest.to_string());
            break;
        }
        let cut = rest
            .get(..fit)
            .and_then(|head| head.rfind(['/', '?', '&']))
            .filter(|&i| i > 0)
            .unwrap_or(fit);
        let (head, tail) = rest.split_at(cut);
        out.push(head.to_string());
        rest = tail;
    }
    out
}

/// The user code on as few lines as fit `max` px: whole, else split at dashes or spaces, else
/// in equal chunks.
fn split_code(code: &str, font: FontId, scale: u32, max: u32) -> Vec<String> {
    if width(font, scale, code) <= max {
        return vec![code.to_string()];
    }
    // Split at dashes and spaces; a line-ending dash is kept when it fits, dropped when not
    // (the break shows the grouping anyway).
    let fit_line = |l: &str| -> String {
        let l = l.trim_end();
        if width(font, scale, l) <= max {
            l.to_string()
        } else {
            l.trim_end_matches('-').to_string()
        }
    };
    let groups: Vec<&str> = code.split_inclusive(['-', ' ']).collect();
    if groups.len() > 1 {
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        for g in groups {
            let candidate = format!("{line}{g}");
            let bare = candidate.trim_end().trim_end_matches('-');
            if !line.is_empty() && width(font, scale, bare) > max {
                lines.push(fit_line(&line));
                line = g.to_string();
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            lines.push(fit_line(&line));
        }
        if lines.iter().all(|l| width(font, scale, l) <= max) {
            return lines;
        }
    }
    let chars: Vec<char> = code.chars().collect();
    let per_line = (max / (width(font, scale, "W").max(1))).max(1) as usize;
    chars
        .chunks(per_line)
        .map(|c| c.iter().collect::<String>())
        .collect()
}

/// `12:34`, or `1:02:03` from an hour up.
pub fn clock_text(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

// ---------------------------------------------------------------------------------------------
// Stacking: a column of pieces placed top to bottom.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Piece {
    Lines {
        lines: Vec<String>,
        font: FontId,
        scale: u32,
        role: Role,
        code: bool,
    },
    Qr(Fitted),
    Ticker {
        font: FontId,
        scale: u32,
        bar: bool,
    },
    Gap(u32),
}

impl Piece {
    fn height(&self, ty: &Type) -> u32 {
        match self {
            Piece::Lines {
                lines, font, scale, ..
            } => {
                let n = u32::try_from(lines.len()).unwrap_or(u32::MAX);
                n.saturating_mul(line_height(*font, *scale))
            }
            Piece::Qr(code) => code.side(),
            Piece::Ticker { font, scale, bar } => {
                line_height(*font, *scale) + if *bar { ty.gap / 2 + ty.bar } else { 0 }
            }
            Piece::Gap(g) => *g,
        }
    }
}

fn lines(lines: Vec<String>, font: FontId, role: Role) -> Piece {
    Piece::Lines {
        lines,
        font,
        scale: 1,
        role,
        code: false,
    }
}

/// Interleaves `gap` between pieces (a `Gap` already present replaces it).
fn spaced(pieces: Vec<Piece>, gap: u32) -> Vec<Piece> {
    let mut out = Vec::with_capacity(pieces.len() * 2);
    for p in pieces {
        if !out.is_empty()
            && !matches!(p, Piece::Gap(_))
            && !matches!(out.last(), Some(Piece::Gap(_)))
        {
            out.push(Piece::Gap(gap));
        }
        out.push(p);
    }
    out
}

fn column_height(pieces: &[Piece], ty: &Type) -> u32 {
    pieces.iter().map(|p| p.height(ty)).sum()
}

/// Places `pieces` in `area` (`center`: each piece centred horizontally; the column is centred
/// vertically either way) and appends the results to `out`.
fn place(pieces: Vec<Piece>, area: Rectangle, center: bool, ty: &Type, out: &mut Layout) {
    let total = column_height(&pieces, ty);
    let mut y = area.top_left.y + to_i32(area.size.height.saturating_sub(total) / 2);
    let x0 = area.top_left.x;
    let w = area.size.width;
    let hx = |pw: u32| {
        if center {
            x0 + to_i32(w.saturating_sub(pw) / 2)
        } else {
            x0
        }
    };
    for p in pieces {
        let h = p.height(ty);
        match p {
            Piece::Lines {
                lines,
                font,
                scale,
                role,
                code,
            } => {
                let lh = to_i32(line_height(font, scale));
                for (i, line) in lines.into_iter().enumerate() {
                    let origin = Point::new(
                        hx(width(font, scale, &line)),
                        y + lh * to_i32(u32::try_from(i).unwrap_or(0)),
                    );
                    let t = Text {
                        origin,
                        text: line,
                        font,
                        scale,
                        role,
                    };
                    if code {
                        out.code.push(t.rect());
                    }
                    out.items.push(Item::Text(t));
                }
            }
            Piece::Qr(code) => {
                let origin = Point::new(hx(code.side()), y);
                out.items.push(Item::Qr { origin, code });
            }
            Piece::Ticker { font, scale, bar } => {
                let rect = Rectangle::new(Point::new(x0, y), Size::new(w, h));
                let bar = bar.then(|| {
                    Rectangle::new(Point::new(x0, y + to_i32(h - ty.bar)), Size::new(w, ty.bar))
                });
                out.ticker = Some(Ticker {
                    rect,
                    text_y: y,
                    font,
                    scale,
                    align: if center { Align::Center } else { Align::Left },
                    bar,
                });
            }
            Piece::Gap(_) => {}
        }
        y += to_i32(h);
    }
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

// ---------------------------------------------------------------------------------------------
// The layout function.
// ---------------------------------------------------------------------------------------------

/// Seconds each OLED page stays: the QR page most of the time, the URL page briefly.
const OLED_CYCLE: u64 = 15;
const OLED_URL_PAGE: u64 = 5;

/// Which page of an alternating layout `view` is on: only 128×64-class screens that cannot
/// show the QR and the URL together alternate; everything else is always page 0.
pub fn page_of(view: &View, size: Size, profile: &Profile) -> u8 {
    let code = match view {
        View::WaitingForUser(c) => c,
        View::Retrying { code: Some(c), .. } => c,
        _ => return 0,
    };
    let logical = Size::new(size.width / zoom_of(size), size.height / zoom_of(size));
    if tier_of(logical) != Tier::Oled || !oled_alternates(code, logical, profile) {
        return 0;
    }
    u8::from(code.remaining.as_secs() % OLED_CYCLE < OLED_URL_PAGE)
}

/// The layout of `view` on a `size` screen (already rotated: width is what the viewer sees).
pub fn layout(view: &View, size: Size, profile: &Profile) -> Layout {
    let zoom = zoom_of(size);
    let logical = Size::new(size.width / zoom, size.height / zoom);
    let tier = tier_of(logical);
    let ty = type_of(tier);
    // A title-safe margin is for TVs; a 128×64 panel shows every pixel and has none to spare.
    let pct = if tier == Tier::Oled {
        0
    } else {
        profile.safe_percent.min(20)
    };
    let mx = (logical.width * pct / 100).max(ty.edge);
    let my = (logical.height * pct / 100).max(ty.edge);
    let safe = Rectangle::new(
        Point::new(to_i32(mx), to_i32(my)),
        Size::new(
            logical.width.saturating_sub(2 * mx),
            logical.height.saturating_sub(2 * my),
        ),
    );
    let mut out = Layout {
        size: logical,
        zoom,
        safe,
        items: Vec::new(),
        ticker: None,
        code: Vec::new(),
    };
    let page = page_of(view, size, profile);
    match view {
        View::WaitingForUser(c) => code_screen(c, None, tier, &ty, page, profile, &mut out),
        View::Retrying {
            reason,
            code: Some(c),
            ..
        } => code_screen(c, Some(reason), tier, &ty, page, profile, &mut out),
        View::Retrying {
            reason, code: None, ..
        } => message_screen(
            "Network trouble",
            Role::Warn,
            &[reason.as_str()],
            true,
            &ty,
            &mut out,
        ),
        View::WaitingForClock => message_screen(
            "Waiting for network time...",
            Role::Warn,
            &[
                "The clock is not set yet. Pairing starts as soon as the time comes from the network.",
            ],
            false,
            &ty,
            &mut out,
        ),
        View::Paired { account } => {
            let who = account
                .as_deref()
                .map(|a| format!("Paired as {a}"))
                .unwrap_or_else(|| "Paired".to_string());
            message_screen(
                &who,
                Role::Good,
                &[
                    "This device is signed in.",
                    "To unpair it, run: devauth unpair",
                ],
                false,
                &ty,
                &mut out,
            )
        }
        View::Denied => message_screen(
            "Access denied",
            Role::Bad,
            &["The request was declined on the sign-in page. Start pairing again to retry."],
            false,
            &ty,
            &mut out,
        ),
        View::Error { message } => message_screen(
            "Pairing stopped",
            Role::Bad,
            &[message.as_str()],
            false,
            &ty,
            &mut out,
        ),
    }
    out
}

/// A title and a few paragraphs, centred; `ticker` reserves a countdown line ("retrying in").
fn message_screen(
    title: &str,
    role: Role,
    paragraphs: &[&str],
    ticker: bool,
    ty: &Type,
    out: &mut Layout,
) {
    let area = out.safe;
    let w = area.size.width;
    let h = area.size.height;
    let title = drawable(title);
    // Fewer lines per paragraph until it fits.
    for max_lines in [6usize, 4, 3, 2, 1] {
        let mut pieces = vec![lines(wrap(&title, ty.title, 1, w, 2), ty.title, role)];
        for p in paragraphs {
            pieces.push(lines(
                wrap(&drawable(p), ty.body, 1, w, max_lines),
                ty.body,
                Role::Text,
            ));
        }
        if ticker {
            pieces.push(Piece::Ticker {
                font: ty.small,
                scale: 1,
                bar: false,
            });
        }
        let pieces = spaced(pieces, ty.gap);
        if column_height(&pieces, ty) <= h || max_lines == 1 {
            place(pieces, area, true, ty, out);
            return;
        }
    }
}

/// Pieces of the code text column at `density` (0 = everything, higher = fewer parts).
struct CodeParts<'a> {
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
        pieces.push(Piece::Lines {
            lines: split_code(&code, font, scale, w),
            font,
            scale,
            role: Role::Code,
            code: true,
        });
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

fn payloads(c: &CodeScreen, tier: Tier) -> Vec<String> {
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

fn code_screen(
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
        let side = sh.min(sw * 45 / 100);
        let qr = fit_best(c, tier, ty, side);
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
fn oled_alternates(c: &CodeScreen, size: Size, _profile: &Profile) -> bool {
    let ty = type_of(Tier::Oled);
    let Some(qr) = fit_best(c, Tier::Oled, &ty, size.height) else {
        return false;
    };
    let w = size.width.saturating_sub(qr.side() + ty.gap);
    let pieces = oled_column(c, &ty, w, true);
    column_height(&pieces, &ty) > size.height
}

/// The OLED's text column: the code (split to fit), optionally the URL, and the countdown.
fn oled_column(c: &CodeScreen, ty: &Type, w: u32, with_url: bool) -> Vec<Piece> {
    let code = drawable(&c.user_code);
    let (font, scale) = ty.code.first().copied().unwrap_or((FontId::Code16, 1));
    let mut pieces = Vec::new();
    if with_url {
        let url = url_text(&c.verification_uri);
        pieces.push(lines(wrap_url(&url, ty.body, 1, w), ty.body, Role::Link));
    }
    pieces.push(Piece::Lines {
        lines: split_code(&code, font, scale, w),
        font,
        scale,
        role: Role::Code,
        code: true,
    });
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
                // A long URL (Microsoft's wraps to three lines) leaves no room for the
                // countdown: the URL and the code are what the person needs.
                without_ticker_if_tall(oled_column(c, ty, w, true), ty, size.height)
            };
            place(pieces, full, true, ty, out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ticker's content.
// ---------------------------------------------------------------------------------------------

/// What the countdown slot shows for `view` (None when the view has no countdown).
pub fn tick(view: &View, slot: &Ticker) -> Option<Tick> {
    let w = slot.rect.size.width;
    let fits = |s: &str| width(slot.font, slot.scale, s) <= w;
    let permille = |c: &CodeScreen| {
        let life = c.lifetime.as_millis().max(1);
        let left = c.remaining.as_millis().min(life);
        u32::try_from(left * 1000 / life).unwrap_or(1000)
    };
    match view {
        View::WaitingForUser(c) => {
            let t = clock_text(c.remaining.as_secs());
            let long = format!("Code expires in {t}");
            let text = if c.remaining.is_zero() {
                "Code expired; getting a new one".to_string()
            } else if fits(&long) {
                long
            } else {
                t
            };
            Some(Tick {
                text,
                role: Role::Muted,
                permille: permille(c),
            })
        }
        View::Retrying { in_secs, code, .. } => {
            let short = format!("Retrying in {in_secs} s");
            let text = match code {
                Some(c) => {
                    let long = format!(
                        "{short} - code expires in {}",
                        clock_text(c.remaining.as_secs())
                    );
                    if fits(&long) {
                        long
                    } else if fits(&short) {
                        short
                    } else {
                        format!("retry {in_secs}s")
                    }
                }
                None => short,
            };
            Some(Tick {
                text,
                role: Role::Warn,
                permille: code.as_ref().map_or(0, permille),
            })
        }
        _ => None,
    }
}

/// The part of a view that the layout depends on: the view with its clocks zeroed, plus the
/// page. Two views with equal keys have equal layouts.
pub fn static_key(view: &View, size: Size, profile: &Profile) -> (View, u8) {
    let mut v = view.clone();
    match &mut v {
        View::WaitingForUser(c) => c.remaining = std::time::Duration::ZERO,
        View::Retrying { in_secs, code, .. } => {
            *in_secs = 0;
            if let Some(c) = code {
                c.remaining = std::time::Duration::ZERO;
            }
        }
        _ => {}
    }
    (v, page_of(view, size, profile))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn sample(complete: bool) -> CodeScreen {
        CodeScreen {
            verification_uri: "https://example.com/device".into(),
            qr_payload: if complete {
                "https://example.com/device?user_code=WDJB-MJHT".into()
            } else {
                "https://example.com/device".into()
            },
            user_code: "WDJB-MJHT".into(),
            message: None,
            remaining: Duration::from_secs(754),
            lifetime: Duration::from_secs(900),
            renewed: false,
        }
    }

    /// On the QR page of alternating (OLED) layouts.
    fn qr_page() -> CodeScreen {
        CodeScreen {
            remaining: Duration::from_secs(760),
            ..sample(true)
        }
    }

    #[test]
    fn the_oled_alternates_between_qr_and_url() {
        let size = Size::new(128, 64);
        let p = Profile {
            safe_percent: 0,
            mono: true,
        };
        let qr = layout(&View::WaitingForUser(qr_page()), size, &p);
        assert!(qr.qr().is_some());
        let url = layout(&View::WaitingForUser(sample(true)), size, &p);
        assert!(url.qr().is_none());
        assert!(url.texts().any(|t| t.text.contains("example.com")));
        assert!(!url.code.is_empty() && !qr.code.is_empty());
    }

    fn within(inner: Rectangle, outer: Rectangle) -> bool {
        let (a, b) = (inner.top_left, inner.top_left + inner.size);
        let (c, d) = (outer.top_left, outer.top_left + outer.size);
        a.x >= c.x && a.y >= c.y && b.x <= d.x && b.y <= d.y
    }

    fn overlaps(a: Rectangle, b: Rectangle) -> bool {
        !a.intersection(&b).is_zero_sized()
    }

    const SIZES: [(u32, u32); 12] = [
        (128, 64),
        (240, 240),
        (320, 240),
        (240, 320),
        (480, 320),
        (320, 480),
        (1280, 720),
        (720, 1280),
        (1920, 1080),
        (1080, 1920),
        (3840, 2160),
        (2160, 3840),
    ];

    #[test]
    fn code_screens_keep_url_code_qr_and_ticker_inside_the_safe_area() {
        for (w, h) in SIZES {
            for pct in [0, 5] {
                let profile = Profile {
                    safe_percent: pct,
                    mono: w == 128,
                };
                let view = View::WaitingForUser(qr_page());
                let l = layout(&view, Size::new(w, h), &profile);
                let screen = Rectangle::new(Point::zero(), l.size);
                assert!(l.qr().is_some(), "{w}x{h}: no QR");
                assert!(!l.code.is_empty(), "{w}x{h}: no code");
                let ticker = l.ticker.clone().expect("ticker");
                for item in &l.items {
                    let r = item.rect();
                    assert!(
                        within(r, l.safe),
                        "{w}x{h} {pct}%: {item:?} outside {:?}",
                        l.safe
                    );
                    assert!(within(r, screen));
                    assert!(
                        !overlaps(r, ticker.rect),
                        "{w}x{h}: {item:?} under the ticker"
                    );
                }
                assert!(within(ticker.rect, l.safe), "{w}x{h}: ticker {ticker:?}");
                let joined: String = l.texts().map(|t| t.text.clone()).collect();
                if w != 128 {
                    assert!(joined.contains("example.com/"), "{w}x{h}: {joined}");
                }
            }
        }
    }

    #[test]
    fn qr_uses_integer_scale_and_a_quiet_zone_of_four_except_on_the_oled() {
        for (w, h) in SIZES {
            let l = layout(
                &View::WaitingForUser(qr_page()),
                Size::new(w, h),
                &Profile::default(),
            );
            let (_, code) = l.qr().unwrap();
            if w == 128 {
                assert_eq!(code.quiet, 3);
                assert_eq!(code.payload, "https://example.com/device");
            } else {
                assert_eq!(code.quiet, 4, "{w}x{h}");
                assert_eq!(
                    code.payload,
                    "https://example.com/device?user_code=WDJB-MJHT"
                );
            }
            assert!(code.scale >= 2);
        }
    }

    #[test]
    fn layout_does_not_depend_on_time_left() {
        for (w, h) in SIZES {
            let size = Size::new(w, h);
            let p = Profile::default();
            let mut a = sample(true);
            let mut b = sample(true);
            a.remaining = Duration::from_secs(899);
            b.remaining = Duration::from_secs(898);
            let (va, vb) = (View::WaitingForUser(a), View::WaitingForUser(b));
            assert_eq!(static_key(&va, size, &p), static_key(&vb, size, &p));
            assert_eq!(layout(&va, size, &p), layout(&vb, size, &p));
        }
    }

    #[test]
    fn tick_texts() {
        let slot = Ticker {
            rect: Rectangle::new(Point::zero(), Size::new(1000, 40)),
            text_y: 0,
            font: FontId::Regular20,
            scale: 1,
            align: Align::Left,
            bar: None,
        };
        let t = tick(&View::WaitingForUser(sample(true)), &slot).unwrap();
        assert_eq!(t.text, "Code expires in 12:34");
        assert_eq!(t.permille, 837);
        assert_eq!(clock_text(3723), "1:02:03");
        let narrow = Ticker {
            rect: Rectangle::new(Point::zero(), Size::new(60, 40)),
            ..slot.clone()
        };
        assert_eq!(
            tick(&View::WaitingForUser(sample(true)), &narrow)
                .unwrap()
                .text,
            "12:34"
        );
        assert!(tick(&View::Denied, &slot).is_none());
        let r = View::Retrying {
            reason: "x".into(),
            in_secs: 7,
            code: None,
        };
        assert_eq!(tick(&r, &slot).unwrap().text, "Retrying in 7 s");
    }

    #[test]
    fn wrapping() {
        let f = FontId::Regular14;
        let max = f.width("hello world");
        assert_eq!(
            wrap("hello world again", f, 1, max, 5),
            vec!["hello world", "again"]
        );
        let cut = wrap("a b c d e f g h i j k", f, 1, f.width("a b c"), 2);
        assert_eq!(cut.len(), 2);
        assert!(cut[1].ends_with("..."));
        let long = wrap("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", f, 1, 50, 10);
        assert!(long.len() > 1 && long.iter().all(|l| f.width(l) <= 50));
        let url = wrap_url("example.com/device/very/long/path?x=1&y=2", f, 1, 100);
        assert!(url.iter().all(|l| f.width(l) <= 100), "{url:?}");
        assert_eq!(url.concat(), "example.com/device/very/long/path?x=1&y=2");
        assert_eq!(
            split_code("WDJB-MJHT", FontId::Code16, 1, 64),
            vec!["WDJB", "MJHT"]
        );
        assert_eq!(
            split_code("WDJB-MJHT", FontId::Code16, 1, 75),
            vec!["WDJB-", "MJHT"]
        );
        assert_eq!(
            url_text("https://example.com/device/"),
            "example.com/device"
        );
        assert_eq!(
            url_text("http://127.0.0.1:8080/d"),
            "http://127.0.0.1:8080/d"
        );
    }
}
