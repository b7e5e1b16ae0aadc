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

mod code;
mod column;
#[cfg(test)]
mod tests;
mod text;

use super::fonts::{FontId, drawable};
use super::qr::Fitted;
use super::{CodeScreen, View};
use code::{code_screen, oled_alternates};
use column::{Piece, column_height, lines, place, spaced, to_i32};
pub use text::clock_text;
use text::{width, wrap};

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
